"""The one error type isa/ raises: a malformed instruction, binary, assembly text or program."""


class IsaError(ValueError):
    """Bad ISA input: the message is one sentence naming what is wrong, where, and what would be valid."""
