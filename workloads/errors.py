"""The one error type workloads/ raises for bad user input (a bad preset, text, or weights file)."""


class WorkloadError(ValueError):
    """Bad input to a workload: the message is one sentence naming what, where, and what would be valid."""
