"""How a server's life is driven and reported: progress, readiness and taking turns.

The spawner's ``start()``, ``stop()``, ``poll()`` and ``progress()`` delegate here; the
modules read the shared reflectors' caches and never poll the API in a loop.
"""
