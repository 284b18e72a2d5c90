"""devsim-tui: a terminal control room in which a whole DevOps estate is simulated live."""

__version__ = "0.1.0"
