"""The one error type the mapper raises for a chip or workload it cannot map."""


class MapperError(ValueError):
    """The workload cannot be mapped onto this chip: one sentence naming what, where, and what would fit."""
