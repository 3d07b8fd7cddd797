"""followmoney: find bribery and structuring signals in money-service transaction data."""

__version__ = "0.1.0"
