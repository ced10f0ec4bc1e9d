"""``python -m async_kubespawner.operator [--namespace NS]``: run one operator replica."""

from .app import main

if __name__ == "__main__":
    raise SystemExit(main())
