"""The simulator process of the operator benchmark: ``benchmarks.sim_host`` plus a PVC binder.

    python -m benchmarks.operator_sim_host [sim_host options]

Operator mode provisions a PVC with every server (the default template's home volume),
and the simulated scheduler keeps a pod whose claim is unbound unschedulable, as a real
one does. ``benchmarks.sim_host`` runs the scheduler and the kubelet only (the in-hub
storm creates no PVCs); this wrapper adds the simulator's own persistentvolume
controller (:class:`kubesim.cluster.pvc.PVCBinder`) with a default storage class that
binds at once, so storage adds API work (the claim, its binding, its events) but no
waiting. Everything else, the commands and the marks included, is ``sim_host``'s.
"""

from __future__ import annotations

import sys
from typing import Any

from kubesim.cluster.clock import Clock
from kubesim.cluster.pvc import PVCBinder, StorageClassSpec

from benchmarks import sim_host


def _with_binder(run_simulator: Any) -> Any:
    def run(**options: Any) -> Any:
        binder = PVCBinder([StorageClassSpec("standard", bind_delay=0.0, default=True)],
                           clock=Clock.real())
        options["controllers"] = [*options.get("controllers", []),
                                  sim_host.ViewedController(binder)]
        return run_simulator(**options)

    return run


def main() -> int:
    sim_host.run_simulator = _with_binder(sim_host.run_simulator)  # type: ignore[attr-defined]
    return sim_host.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
