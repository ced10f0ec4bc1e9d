"""A configuration touching every configured fragment of the pod and the PVC, in both
key spellings, for the tests that compare what is sent to the API server."""

from __future__ import annotations

from typing import Any

from async_kubespawner.objects.manifests import PodSettings, PVCSettings


def rich_pod_settings() -> PodSettings:
    return PodSettings(
        name="jupyter-alice",
        image="example.org/lab:1",
        labels={"app": "jupyterhub"},
        annotations={"note": "x"},
        args=["jupyterhub-singleuser"],
        env={
            "PLAIN": "1",
            "FROM_SECRET": {"valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            "SNAKE": {"value_from": {"field_ref": {"field_path": "metadata.name"}}},
        },
        working_dir="/home/jovyan",
        image_pull_policy="IfNotPresent",
        image_pull_secrets=["regcred", {"name": "other"}],
        node_selector={"pool": "users"},
        uid=1000,
        gid=100,
        fs_gid=100,
        supplemental_gids=[5],
        container_security_context={"readOnlyRootFilesystem": True},
        pod_security_context={"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]},
        cpu_limit=2.0,
        cpu_guarantee=0.5,
        mem_limit="2G",
        mem_guarantee="1G",
        extra_resource_limits={"nvidia.com/gpu": "1"},
        volumes=[
            {"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}},
            {"name": "cfg", "config_map": {"name": "cfg", "default_mode": 420}},
        ],
        volume_mounts=[
            {"name": "home", "mountPath": "/home/jovyan"},
            {"name": "cfg", "mount_path": "/etc/cfg", "read_only": True},
        ],
        lifecycle_hooks={"postStart": {"exec": {"command": ["true"]}}},
        init_containers=[
            {
                "name": "init",
                "image": "busybox",
                "securityContext": {"runAsUser": 1000},
                "volumeMounts": [{"name": "home", "mountPath": "/h"}],
            }
        ],
        extra_containers=[
            {
                "name": "side",
                "image": "busybox",
                "ports": [{"containerPort": 9000, "name": "side-port"}],
                "resources": {"limits": {"cpu": "100m"}},
                "env": [
                    {"name": "A", "value_from": {"field_ref": {"field_path": "spec.nodeName"}}}
                ],
            }
        ],
        service_account="notebooks",
        tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        node_affinity_required=[
            {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["users"]}]}
        ],
        node_affinity_preferred=[
            {
                "weight": 1,
                "preference": {
                    "match_expressions": [{"key": "z", "operator": "In", "values": ["a"]}]
                },
            }
        ],
        pod_anti_affinity_preferred=[
            {
                "weight": 10,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"app": "jupyterhub"}},
                    "topologyKey": "kubernetes.io/hostname",
                },
            }
        ],
        priority_class_name="users",
        extra_container_config={"stdin": True, "envFrom": [{"configMapRef": {"name": "e"}}]},
        extra_pod_config={
            "dnsConfig": {"nameservers": ["1.1.1.1"]},
            "topology_spread_constraints": [
                {
                    "max_skew": 1,
                    "topology_key": "zone",
                    "when_unsatisfiable": "ScheduleAnyway",
                }
            ],
        },
    )


def rich_pvc_settings() -> PVCSettings:
    return PVCSettings(
        name="claim-alice",
        labels={"a": "b"},
        storage="10Gi",
        storage_class="fast",
        selector={
            "match_labels": {"disk": "x"},
            "matchExpressions": [{"key": "k", "operator": "Exists"}],
        },
    )


def pod_json(pod: Any) -> Any:
    from async_kubespawner.kube.client import to_json

    return to_json(pod)
