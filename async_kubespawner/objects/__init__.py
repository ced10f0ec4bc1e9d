"""What the spawner creates, as pure functions: names, manifests, identity.

Nothing in this package does I/O or reads a trait: resolved settings go in, names and
``kubernetes_asyncio`` models come out, so every rule can be tested with plain asserts.
"""
