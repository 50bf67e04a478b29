"""chipsim: a simulator and performance model of a systolic-array AI accelerator."""

__version__ = "0.1.0"
