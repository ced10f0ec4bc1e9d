"""Benchmarks for async_kubespawner (and any other Spawner class) against the simulator.

Run from the repository root, e.g.
``python -m benchmarks.spawn_storm --spawner async_kubespawner.KubeSpawner --users 1000``.
See ``benchmarks/README.md``.
"""
