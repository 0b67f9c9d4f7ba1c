"""AstraForge: a CI-native AI fixer."""

__version__ = "0.1.0"
