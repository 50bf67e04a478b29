"""Peer simulators (SCALE-Sim, ZigZag) run as oracles in their own virtualenv (`.venv-peers`).

The modules here that import a peer are run only by the peers' interpreter, as subprocesses; chipsim's own
environment never imports a peer (`benchmarks.peers.runner` starts them).
"""
