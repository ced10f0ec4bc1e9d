"""Shared pytest configuration: every test runs on asyncio (pytest-asyncio auto mode)."""
