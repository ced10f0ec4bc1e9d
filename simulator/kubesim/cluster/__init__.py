"""Nodes, scheduler and kubelet: in-process controllers that act on the simulator's store.

``python -m kubesim`` calls :func:`add_arguments` and
:func:`build_controllers`; tests use :class:`~.cluster.SimCluster` through
``run_cluster`` or the ``cluster`` fixture (``kubesim/cluster/testing.py``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubesim.testing import Controller


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The cluster's command-line options (nodes, scenarios, clock, process mode)."""
    from .config import ClusterConfig

    ClusterConfig.add_arguments(parser)


def build_controllers(args: argparse.Namespace) -> Sequence[Controller]:
    """The cluster for ``python -m kubesim`` (none with ``--no-cluster``).

    A bad option or YAML file ends the program with the configuration's own message.
    """
    from .cluster import SimCluster
    from .config import ClusterConfig, ClusterConfigError

    if args.no_cluster:
        return ()
    try:
        return (SimCluster(ClusterConfig.from_args(args)),)
    except ClusterConfigError as exc:
        raise SystemExit(f"async-kubespawner-sim: {exc}") from None
