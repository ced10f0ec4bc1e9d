"""Watching pods and reading events through kubernetes_asyncio, the way a spawner does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from kubernetes_asyncio import client, watch

HANG_GUARD = 20  # seconds; only stops a broken test from hanging, never part of an assertion


def main_state(pod: Any) -> str:
    """``waiting:Reason`` / ``running`` / ``terminated:Reason`` of the first container."""
    statuses = pod.status.container_statuses or []
    if not statuses:
        return "none"
    state = statuses[0].state
    if state.waiting:
        return f"waiting:{state.waiting.reason}"
    if state.running:
        return "running"
    return f"terminated:{state.terminated.reason}"


def condition(pod: Any, kind: str) -> str | None:
    for c in pod.status.conditions or []:
        if c.type == kind:
            return c.status
    return None


async def create_and_follow(
    api: client.CoreV1Api,
    manifest: dict[str, Any],
    until: Callable[[str, Any], bool],
    namespace: str = "default",
) -> list[tuple[str, Any]]:
    """Create a pod and return every watch event of it until ``until(type, pod)`` holds."""
    start = (await api.list_namespaced_pod(namespace)).metadata.resource_version
    # cast: the client sends a plain dict as it is; its stubs ask for the model
    await api.create_namespaced_pod(namespace, cast(Any, manifest))
    return await follow(api, manifest["metadata"]["name"], until, namespace, start)


async def follow(
    api: client.CoreV1Api,
    name: str,
    until: Callable[[str, Any], bool],
    namespace: str = "default",
    resource_version: str | None = None,
) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    kwargs: dict[str, Any] = {"field_selector": f"metadata.name={name}"}
    if resource_version:
        kwargs["resource_version"] = resource_version
    async with watch.Watch() as w, asyncio.timeout(HANG_GUARD):  # the Watch owns a client
        async for event in w.stream(api.list_namespaced_pod, namespace, **kwargs):
            seen.append((event["type"], event["object"]))
            if until(event["type"], event["object"]):
                break
    return seen


async def pod_events(api: client.CoreV1Api, name: str, namespace: str = "default") -> list[Any]:
    """The pod's events in the order they were recorded."""
    events = (await api.list_namespaced_event(namespace)).items
    mine = [e for e in events if e.involved_object.name == name]
    return sorted(mine, key=lambda e: int(e.metadata.resource_version))


async def wait_for_event(
    api: client.CoreV1Api,
    name: str,
    reason: str,
    namespace: str = "default",
    kind: str | None = None,
) -> Any:
    """Watch events until one with ``reason`` about ``name`` exists; return it."""
    async with watch.Watch() as w, asyncio.timeout(HANG_GUARD):
        async for event in w.stream(api.list_namespaced_event, namespace):
            obj = event["object"]
            if (
                obj.involved_object.name == name
                and obj.reason == reason
                and (kind is None or obj.involved_object.kind == kind)
            ):
                return obj
    raise AssertionError(f"no {reason} event for {name}")


def pod_manifest(
    name: str,
    *,
    image: str = "registry.example/notebook:1.0",
    scenario: str | None = None,
    cpu: str | None = None,
    restart_policy: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "notebook",
        "image": image,
        "ports": [{"containerPort": 8888, "name": "notebook-port"}],
    }
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}}
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "sim-test"}},
        "spec": {"containers": [container], **spec},
    }
    if scenario:
        body["metadata"]["annotations"] = {"sim.async-kubespawner/scenario": scenario}
    if restart_policy:
        body["spec"]["restartPolicy"] = restart_policy
    return body


def ready(_type: str, pod: Any) -> bool:
    """A ``follow`` predicate: the pod reports Ready=True."""
    return condition(pod, "Ready") == "True"


def finished(_type: str, pod: Any) -> bool:
    """A ``follow`` predicate: the pod reached a terminal phase."""
    return pod.status.phase in ("Succeeded", "Failed")
