"""Manufacturing execution controller for batch-of-one production."""

__version__ = "0.1.0"
