"""Prometheus metrics land in the default registry (the one JupyterHub serves)."""

from prometheus_client import REGISTRY

from async_kubespawner.spawner import SpawnFailed

from . import conftest


def sample(name: str, labels: dict[str, str]) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_spawn_stop_api_and_reflector_metrics(sim, make_spawner, kubelet):
    ok_before = sample("kubespawner_spawn_duration_seconds_count", {"outcome": "success"})
    failed_before = sample("kubespawner_spawn_duration_seconds_count", {"outcome": "failure"})
    stops_before = sample("kubespawner_stop_duration_seconds_count", {"outcome": "success"})
    creates_before = sample(
        "kubespawner_api_request_duration_seconds_count", {"verb": "create", "kind": "pods"}
    )
    errors_before = sample(
        "kubespawner_api_request_errors_total", {"verb": "create", "kind": "pods", "status": "503"}
    )
    sim.faults.fail(503, verb="create", resource="pods", count=1)
    spawner = make_spawner()
    await spawner.start()
    await spawner.stop()
    kubelet.default_fate = conftest.crash_loops
    try:
        await make_spawner("bob").start()
    except SpawnFailed:
        pass
    assert (
        sample("kubespawner_spawn_duration_seconds_count", {"outcome": "success"}) == ok_before + 1
    )
    assert (
        sample("kubespawner_spawn_duration_seconds_count", {"outcome": "failure"})
        == failed_before + 1
    )
    assert (
        sample("kubespawner_stop_duration_seconds_count", {"outcome": "success"})
        == stops_before + 1
    )
    assert (
        sample("kubespawner_api_request_duration_seconds_count", {"verb": "create", "kind": "pods"})
        == creates_before + 3
    )
    assert (
        sample(
            "kubespawner_api_request_errors_total",
            {"verb": "create", "kind": "pods", "status": "503"},
        )
        == errors_before + 1
    )
    reflector = await spawner._pod_reflector()
    assert sample("kubespawner_cache_objects", {"reflector": reflector.name}) == len(reflector.sink)
    age = REGISTRY.get_sample_value(
        "kubespawner_reflector_last_event_age_seconds", {"reflector": reflector.name}
    )
    assert age is not None and 0 <= age < 60
