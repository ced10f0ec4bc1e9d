"""Developer tools kept out of the product wheel: the demo and the local hub stack.

``make demo`` runs ``python -m devtools.demo``; the end-to-end tests start the same
processes through :mod:`devtools.local_stack`.
"""
