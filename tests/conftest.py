"""Shared pytest configuration: every test runs on asyncio (pytest-asyncio auto mode)."""

pytest_plugins = ["async_kubespawner.sim.pytest_plugin"]
