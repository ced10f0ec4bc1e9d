"""A merge patch that shares untouched parts with its target gives the same object.

Status writes merge their patch without deep-copying the whole stored object first;
these properties pin that to the copying merge: equal result, the target unchanged,
and the patch's own values never aliased into the result.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kubesim.patching import apply_merge_patch

KEYS = st.sampled_from(["a", "b", "status", "spec", "phase"])
SCALARS = st.none() | st.integers() | st.text(max_size=3) | st.booleans()
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=15,
)
OBJECTS = st.dictionaries(KEYS, VALUES, max_size=5)


@settings(max_examples=400, deadline=None)
@given(OBJECTS, OBJECTS)
def test_shared_merge_equals_copying_merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    target_before = copy.deepcopy(target)
    patch_before = copy.deepcopy(patch)
    shared = apply_merge_patch(target, patch, share=True)
    assert shared == apply_merge_patch(target, patch)
    assert target == target_before
    assert patch == patch_before
    assert shared is not target


def test_untouched_parts_are_shared_and_patched_ones_copied() -> None:
    spec = {"containers": [{"name": "main"}]}
    conditions = [{"type": "Ready", "status": "False"}]
    target: dict[str, Any] = {
        "spec": spec, "status": {"phase": "Pending", "conditions": conditions}
    }
    new_conditions = [{"type": "Ready", "status": "True"}]
    patched = apply_merge_patch(target, {"status": {"conditions": new_conditions}}, share=True)
    assert patched["spec"] is spec
    assert patched["status"] is not target["status"]
    assert target["status"]["conditions"] is conditions
    assert patched["status"]["conditions"] == new_conditions
    assert patched["status"]["conditions"] is not new_conditions
