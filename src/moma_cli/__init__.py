"""moma: git as the system of record for ML models and data."""

__version__ = "0.1.0"
