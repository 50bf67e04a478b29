"""The application: the CLI, run orchestration and run files, `chipsim gemm`, sweeps and their planning.

It is the one place that ties the workloads, the mapper, the hardware model (the modules directly in
`chipsim/`) and the reports together; nothing below it imports it.
"""
