"""JSON merge, JSON patch and strategic merge patch, with the real server's failures."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubesim.patching import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)

POD: dict[str, Any] = {
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


@pytest.mark.parametrize(
    ("doc", "op", "message"),
    [
        (
            {},
            {"op": "remove", "path": "/nope"},
            "error in remove for path: '/nope': Unable to remove nonexistent key: nope: missing value",
        ),
        (
            {},
            {"op": "remove", "path": "/a/b"},
            'remove operation does not apply: doc is missing path: "/a/b": missing value',
        ),
        (
            {},
            {"op": "add", "path": "/a/b", "value": 1},
            'add operation does not apply: doc is missing path: "/a/b": missing value',
        ),
        (
            {},
            {"op": "replace", "path": "/a/b", "value": 1},
            "replace operation does not apply: doc is missing path: /a/b: missing value",
        ),
        (
            {"a": [1]},
            {"op": "replace", "path": "/a/3", "value": 1},
            "replace operation does not apply: doc is missing key: /a/3: missing value",
        ),
        (
            {},
            {"op": "move", "from": "/x/y", "path": "/y"},
            "move operation does not apply: doc is missing from path: /x/y: missing value",
        ),
        (
            {"x": 1},
            {"op": "move", "from": "/y", "path": "/z"},
            "error in move for path: 'y': Unable to remove nonexistent key: y: missing value",
        ),
        (
            {"x": 1},
            {"op": "copy", "from": "/x", "path": "/q/r"},
            "copy operation does not apply: doc is missing destination path: /q/r: missing value",
        ),
        (
            {"a": [1]},
            {"op": "add", "path": "/a/5", "value": 1},
            "error in add for path: '/a/5': Unable to access invalid index: 5: invalid index referenced",
        ),
        (
            {"a": [1]},
            {"op": "add", "path": "/a/x", "value": 1},
            "error in add for path: '/a/x': value was not a proper array index: 'x': "
            'strconv.Atoi: parsing "x": invalid syntax',
        ),
        (
            {"a": [1]},
            {"op": "remove", "path": "/a/1"},
            "error in remove for path: '/a/1': Unable to access invalid index: 1: invalid index referenced",
        ),
        (
            {},
            {"op": "test", "path": "/a/b", "value": 1},
            "test operation does not apply: is missing path: /a/b: missing value",
        ),
        ({}, {"op": "test", "path": "/a", "value": 1}, "testing value /a failed: test failed"),
    ],
)
def test_json_patch_failures_worded_like_the_real_server(doc: dict, op: dict, message: str) -> None:
    error = _fails(doc, [op])
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.causes == [{"reason": "UnexpectedServerResponse", "message": message}]


def test_json_patch_library_quirks_are_kept() -> None:
    # replace of a missing object key adds it; test of a missing key against null passes
    assert apply_json_patch({}, [{"op": "replace", "path": "/k", "value": 1}]) == {"k": 1}
    assert apply_json_patch({}, [{"op": "test", "path": "/k", "value": None}]) == {}
    # negative indices count from the end
    assert apply_json_patch({"a": [1, 2, 3]}, [{"op": "remove", "path": "/a/-1"}]) == {"a": [1, 2]}
    # replacing the whole document
    assert apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}]) == {
        "b": 2
    }


def test_json_patch_undecodable_is_400() -> None:
    bad_op = _fails({}, [{"op": "frobnicate", "path": "/a"}])
    assert bad_op.causes[0]["message"] == "Unexpected kind: frobnicate"
    not_list = _fails({}, {"op": "add"})
    assert (not_list.code, not_list.reason) == (400, "BadRequest")
    assert not_list.message == "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
    not_object = _fails({}, ["add"])
    assert not_object.code == 400


def test_json_patch_failure_leaves_no_partial_change() -> None:
    doc = {"a": 1}
    _fails(doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/zzz"}])
    assert doc == {"a": 1}


# ------------------------------------------------------------------ strategic merge patch


def _smp(patch: dict, target: dict | None = None, kind: str = "Pod") -> dict:
    original = copy.deepcopy(target if target is not None else POD)
    patch_before = copy.deepcopy(patch)
    result = apply_strategic_merge_patch(original, patch, kind)
    assert original == (target if target is not None else POD), "input was mutated"
    assert patch == patch_before, "patch was mutated"
    # the result shares nothing with the patch: changing it cannot change the patch
    _scribble(result)
    assert patch == patch_before, "result shares structure with the patch"
    return apply_strategic_merge_patch(original, patch, kind)


def _scribble(value: object) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _scribble(item)
        value["__scribbled__"] = True
    elif isinstance(value, list):
        for item in value:
            _scribble(item)
        value.append("__scribbled__")


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


def test_set_element_order_interleaves_server_only_items() -> None:
    target = {"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}}
    result = _smp(
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
                "containers": [{"name": "c", "image": "c:2"}],
            }
        },
        target,
    )
    # b is known only to the server: it keeps its place before c, as in the real server
    assert [c["name"] for c in result["spec"]["containers"]] == ["b", "c", "a"]


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
    assert info.value.causes[0]["message"] == "patch content doesn't match retainKeys list"


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


def test_strategic_errors_like_the_real_server() -> None:
    # Errors the real server never converts to a Status: 500 with no reason.
    with pytest.raises(PatchError) as info:
        apply_strategic_merge_patch(POD, {"spec": {"containers": [{"image": "no-name"}]}}, "Pod")
    assert info.value.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "map: map[image:no-name] does not contain declared merge key: name",
        "code": 500,
    }
    with pytest.raises(PatchError) as info:
        apply_strategic_merge_patch(POD, {"metadata": {"$patch": "explode"}}, "Pod")
    assert (info.value.code, info.value.reason) == (500, "")
    assert info.value.message == "unknown patch type: explode in map: map[$patch:explode]"
    with pytest.raises(PatchError) as info:
        apply_strategic_merge_patch(POD, {"spec": {"containers": ["x"]}}, "Pod")
    assert info.value.message == "expected a map[string]interface {}, but received a string"
    # Malformed directives are 400s.
    with pytest.raises(PatchError) as info:
        apply_strategic_merge_patch(
            POD, {"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}}, "Pod"
        )
    assert (info.value.code, info.value.message) == (400, "invalid patch format of primitive list")
    with pytest.raises(PatchError) as info:
        apply_strategic_merge_patch(POD, ["not", "a", "map"], "Pod")
    assert info.value.code == 400
