"""The package version, kept in one place for pyproject, state and annotations."""

__version__ = "0.1.0.dev0"
