"""The simulator's version: its own distribution, released apart from the spawner."""

__version__ = "0.1.0.dev0"
