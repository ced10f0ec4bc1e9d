"""JSON merge, JSON patch and strategic merge patch, with the real server's failures."""

from __future__ import annotations

import copy

import pytest

from async_kubespawner.sim.patching import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "jupyter-alice",
        "labels": {"app": "jupyterhub", "old": "x"},
        "finalizers": ["example.com/keep"],
        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "o", "uid": "u1"}],
    },
    "spec": {
        "containers": [
            {
                "name": "notebook",
                "image": "jupyter/base:1",
                "args": ["jupyterhub-singleuser"],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"name": "http", "containerPort": 8888}],
                "volumeMounts": [{"name": "home", "mountPath": "/home/jovyan"}],
            },
            {"name": "sidecar", "image": "side:1"},
        ],
        "volumes": [{"name": "home", "emptyDir": {}}],
        "tolerations": [{"key": "a", "operator": "Exists"}],
        "imagePullSecrets": [{"name": "reg"}],
    },
}


# ------------------------------------------------------------------ merge patch (RFC 7386)


def test_merge_patch_rfc7386_examples() -> None:
    # The examples from RFC 7386 appendix A.
    cases = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for target, patch, expected in cases:
        assert apply_merge_patch(target, patch) == expected


def test_merge_patch_replaces_lists_and_does_not_mutate() -> None:
    before = copy.deepcopy(POD)
    patch = {
        "metadata": {"labels": {"old": None, "new": "y"}},
        "spec": {"containers": [{"name": "x"}]},
    }
    result = apply_merge_patch(POD, patch)
    assert result["metadata"]["labels"] == {"app": "jupyterhub", "new": "y"}
    assert result["spec"]["containers"] == [{"name": "x"}]
    assert POD == before
    result["metadata"]["name"] = "changed"
    assert POD["metadata"]["name"] == "jupyter-alice"


# ------------------------------------------------------------------ JSON patch (RFC 6902)


def test_json_patch_all_operations() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}, "x/y": {"~t": 5}}
    ops = [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "add", "path": "/a/0", "value": 0},
        {"op": "remove", "path": "/a/1"},
        {"op": "replace", "path": "/b/c", "value": {"deep": True}},
        {"op": "copy", "from": "/b", "path": "/d"},
        {"op": "move", "from": "/x~1y/~0t", "path": "/moved"},
        {"op": "test", "path": "/a", "value": [0, 2, 3]},
        {"op": "test", "path": "/moved", "value": 5.0},
    ]
    result = apply_json_patch(doc, ops)
    assert result == {
        "a": [0, 2, 3],
        "b": {"c": {"deep": True}},
        "d": {"c": {"deep": True}},
        "x/y": {},
        "moved": 5,
    }
    assert doc == {"a": [1, 2], "b": {"c": 1}, "x/y": {"~t": 5}}
    result["d"]["c"]["deep"] = False
    assert result["b"]["c"]["deep"] is True  # copy made an independent value


def _fails(doc: object, ops: object) -> PatchError:
    with pytest.raises(PatchError) as info:
        apply_json_patch(doc, ops)
    return info.value


def test_json_patch_test_failure_is_422_like_the_real_server() -> None:
    error = _fails(
        {"data": {"k": "v"}},
        [
            {"op": "replace", "path": "/data/k", "value": "w"},
            {"op": "test", "path": "/data/k", "value": "v"},
        ],
    )
    assert error.code == 422
    assert error.reason == "Invalid"
    assert error.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server rejected our request due to an error in our request",
        "reason": "Invalid",
        "details": {
            "causes": [
                {
                    "reason": "UnexpectedServerResponse",
                    "message": "testing value /data/k failed: test failed",
                }
            ]
        },
        "code": 422,
    }
    # bools are not numbers in JSON
    assert _fails({"a": 1}, [{"op": "test", "path": "/a", "value": True}]).code == 422


def test_json_patch_failures() -> None:
    assert _fails({}, [{"op": "remove", "path": "/nope"}]).causes[0]["message"] == (
        'remove operation does not apply: doc is missing path: "/nope": missing value'
    )
    assert _fails({}, [{"op": "replace", "path": "/nope", "value": 1}]).causes[0]["message"] == (
        "replace operation does not apply: doc is missing key: /nope: missing value"
    )
    assert _fails({}, [{"op": "add", "path": "/a/b", "value": 1}]).causes[0]["message"] == (
        'add operation does not apply: doc is missing path: "/a/b": missing value'
    )
    assert _fails({}, [{"op": "move", "from": "/x", "path": "/y"}]).causes[0]["message"] == (
        "move operation does not apply: doc is missing from path: /x: missing value"
    )
    assert (
        "invalid index" in _fails({"a": [1]}, [{"op": "add", "path": "/a/5", "value": 1}]).message
        or "invalid index"
        in _fails({"a": [1]}, [{"op": "add", "path": "/a/5", "value": 1}]).causes[0]["message"]
    )
    assert _fails({"a": [1]}, [{"op": "remove", "path": "/a/01"}]).code == 422
    bad_op = _fails({}, [{"op": "frobnicate", "path": "/a"}])
    assert (bad_op.code, bad_op.message) == (400, "Unexpected kind: frobnicate")
    not_list = _fails({}, {"op": "add"})
    assert (not_list.code, not_list.reason) == (400, "BadRequest")
    assert not_list.message == "json: cannot unmarshal object into Go value of type jsonpatch.Patch"


def test_json_patch_failure_leaves_no_partial_change() -> None:
    doc = {"a": 1}
    _fails(doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/zzz"}])
    assert doc == {"a": 1}


# ------------------------------------------------------------------ strategic merge patch


def _smp(patch: dict, target: dict | None = None, kind: str = "Pod") -> dict:
    original = copy.deepcopy(target if target is not None else POD)
    result = apply_strategic_merge_patch(original, patch, kind)
    assert original == (target if target is not None else POD), "input was mutated"
    return result


def test_containers_merge_by_name_and_env_by_name() -> None:
    result = _smp(
        {
            "spec": {
                "containers": [
                    {
                        "name": "notebook",
                        "image": "jupyter/base:2",
                        "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}],
                    },
                    {"name": "extra", "image": "extra:1"},
                ]
            }
        }
    )
    containers = result["spec"]["containers"]
    assert [c["name"] for c in containers] == ["notebook", "sidecar", "extra"]
    assert containers[0]["image"] == "jupyter/base:2"
    assert containers[0]["args"] == ["jupyterhub-singleuser"]  # untouched fields stay
    assert containers[0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "two"},
        {"name": "C", "value": "3"},
    ]
    assert containers[1] == {"name": "sidecar", "image": "side:1"}


def test_volume_mounts_by_mount_path_ports_by_container_port() -> None:
    result = _smp(
        {
            "spec": {
                "containers": [
                    {
                        "name": "notebook",
                        "volumeMounts": [
                            {"name": "other", "mountPath": "/home/jovyan"},
                            {"name": "d", "mountPath": "/d"},
                        ],
                        "ports": [
                            {"containerPort": 8888, "protocol": "TCP"},
                            {"containerPort": 9000},
                        ],
                    }
                ]
            }
        }
    )
    c = result["spec"]["containers"][0]
    assert c["volumeMounts"] == [
        {"name": "other", "mountPath": "/home/jovyan"},
        {"name": "d", "mountPath": "/d"},
    ]
    assert c["ports"] == [
        {"name": "http", "containerPort": 8888, "protocol": "TCP"},
        {"containerPort": 9000},
    ]


def test_volumes_and_image_pull_secrets_by_name_tolerations_replaced() -> None:
    result = _smp(
        {
            "spec": {
                "volumes": [{"name": "tmp", "emptyDir": {}}],
                "imagePullSecrets": [{"name": "reg"}, {"name": "reg2"}],
                "tolerations": [{"key": "b", "operator": "Exists"}],
            }
        }
    )
    assert [v["name"] for v in result["spec"]["volumes"]] == ["home", "tmp"]
    assert result["spec"]["imagePullSecrets"] == [{"name": "reg"}, {"name": "reg2"}]
    assert result["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]
    # args has no patch strategy: replaced
    r2 = _smp({"spec": {"containers": [{"name": "notebook", "args": ["x"]}]}})
    assert r2["spec"]["containers"][0]["args"] == ["x"]


def test_finalizers_set_merge_and_delete_from_primitive_list() -> None:
    result = _smp({"metadata": {"finalizers": ["example.com/keep", "example.com/new"]}})
    assert result["metadata"]["finalizers"] == ["example.com/keep", "example.com/new"]
    removed = _smp({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/keep"]}})
    assert removed["metadata"]["finalizers"] == []


def test_owner_references_merge_by_uid() -> None:
    result = _smp(
        {
            "metadata": {
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": "o",
                        "uid": "u1",
                        "controller": True,
                    },
                    {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u2"},
                ]
            }
        }
    )
    refs = result["metadata"]["ownerReferences"]
    assert [r["uid"] for r in refs] == ["u1", "u2"]
    assert refs[0]["controller"] is True


def test_patch_delete_and_replace_directives() -> None:
    result = _smp(
        {
            "spec": {
                "containers": [
                    {"name": "sidecar", "$patch": "delete"},
                    {"name": "notebook", "env": [{"name": "A", "$patch": "delete"}]},
                ]
            }
        }
    )
    assert [c["name"] for c in result["spec"]["containers"]] == ["notebook"]
    assert result["spec"]["containers"][0]["env"] == [{"name": "B", "value": "2"}]
    replaced = _smp(
        {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "o:1"}]}}
    )
    assert replaced["spec"]["containers"] == [{"name": "only", "image": "o:1"}]
    whole_map = _smp({"metadata": {"labels": {"$patch": "replace", "fresh": "1"}}})
    assert whole_map["metadata"]["labels"] == {"fresh": "1"}
    deleted_map = _smp({"spec": {"volumes": None}, "metadata": {"labels": {"$patch": "delete"}}})
    assert "labels" not in deleted_map["metadata"]
    assert "volumes" not in deleted_map["spec"]
    merged = _smp({"metadata": {"labels": {"$patch": "merge", "x": "2"}}})
    assert merged["metadata"]["labels"] == {"app": "jupyterhub", "old": "x", "x": "2"}


def test_set_element_order() -> None:
    result = _smp(
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "notebook"}],
                "containers": [{"name": "sidecar", "image": "side:2"}],
            }
        }
    )
    assert [c["name"] for c in result["spec"]["containers"]] == ["sidecar", "notebook"]
    assert result["spec"]["containers"][0]["image"] == "side:2"
    fin = _smp(
        {
            "metadata": {
                "$setElementOrder/finalizers": ["b", "example.com/keep"],
                "finalizers": ["b"],
            }
        }
    )
    assert fin["metadata"]["finalizers"] == ["b", "example.com/keep"]


def test_retain_keys() -> None:
    target = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    result = _smp(
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        target,
        kind="Deployment",
    )
    assert result == {"spec": {"strategy": {"type": "Recreate"}}}
    with pytest.raises(PatchError) as info:
        apply_strategic_merge_patch(
            target, {"spec": {"strategy": {"$retainKeys": ["type"], "x": 1}}}, "Deployment"
        )
    assert info.value.code == 422


def test_service_ports_merge_by_port() -> None:
    svc = {
        "spec": {
            "ports": [{"name": "http", "port": 80, "targetPort": 8888}],
            "selector": {"a": "b"},
        }
    }
    result = _smp(
        {
            "spec": {
                "ports": [{"port": 80, "targetPort": 9999}, {"port": 443}],
                "selector": {"c": "d"},
            }
        },
        svc,
        kind="Service",
    )
    assert result["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 9999},
        {"port": 443},
    ]
    assert result["spec"]["selector"] == {"a": "b", "c": "d"}


def test_unknown_kind_replaces_lists_but_keeps_metadata_rules() -> None:
    cm = {"metadata": {"finalizers": ["a"]}, "data": {"k": "v"}, "items": [1, 2]}
    result = _smp(
        {"metadata": {"finalizers": ["b"]}, "data": {"k": None, "j": "w"}, "items": [3]},
        cm,
        kind="ConfigMap",
    )
    assert result == {"metadata": {"finalizers": ["a", "b"]}, "data": {"j": "w"}, "items": [3]}


def test_strategic_errors() -> None:
    with pytest.raises(PatchError) as info:
        apply_strategic_merge_patch(POD, {"spec": {"containers": [{"image": "no-name"}]}}, "Pod")
    assert info.value.code == 400
    assert "does not contain declared merge key: name" in info.value.message
    with pytest.raises(PatchError) as info:
        apply_strategic_merge_patch(POD, {"metadata": {"$patch": "explode"}}, "Pod")
    assert info.value.code == 400
    assert info.value.message.startswith("unknown patch type: explode in map:")
    with pytest.raises(PatchError) as info:
        apply_strategic_merge_patch(POD, ["not", "a", "map"], "Pod")
    assert info.value.code == 400
