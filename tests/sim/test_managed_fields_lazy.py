"""Entries kept encoded until a write touches them give exactly what decoding gives.

A write no longer decodes and re-encodes every managedFields entry: it asks the stored
``fieldsV1`` document whether it owns a path and writes untouched entries back as they
were. These properties pin that shortcut to the plain set algebra it replaces, on
arbitrary documents (including malformed ones a client could send) and field sets.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kubesim import managed_fields as mf

ELEMENTS = st.sampled_from(["f:a", "f:b", "f:spec", "f:status", 'k:{"name":"x"}', 'v:"y"', "."])

DOCS: st.SearchStrategy[Any] = st.recursive(
    st.just({}) | st.integers() | st.none(),
    lambda inner: st.dictionaries(ELEMENTS, inner, max_size=4),
    max_leaves=12,
)
PATHS = st.lists(ELEMENTS.filter(lambda e: e != "."), min_size=1, max_size=4).map(tuple)
FIELD_SETS = st.frozensets(PATHS, max_size=10)


def _reference_encode(fields: frozenset[tuple[str, ...]]) -> dict[str, Any]:
    """The straightforward encoding: build the tree, mark members by path lookup."""
    root: dict[str, Any] = {}
    for path in fields:
        node = root
        for element in path:
            node = node.setdefault(element, {})

    def mark(node: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        if not node:
            return {}
        out: dict[str, Any] = {".": {}} if path in fields else {}
        for element in sorted(node):
            out[element] = mark(node[element], (*path, element))
        return out

    return mark(root, ())


@settings(max_examples=300, deadline=None)
@given(FIELD_SETS)
def test_encode_matches_the_reference_and_round_trips(fields: frozenset[tuple[str, ...]]) -> None:
    encoded = mf.encode(fields)
    assert encoded == _reference_encode(fields)
    assert list(map(str, _key_orders(encoded))) == list(map(str, _key_orders(_reference_encode(fields))))
    assert mf.encode(mf.decode(encoded)) == encoded


def _key_orders(node: Any) -> list[list[str]]:
    """Every map's key order (the bytes of the JSON depend on it)."""
    if not isinstance(node, dict):
        return []
    out = [list(node)]
    for child in node.values():
        out.extend(_key_orders(child))
    return out


@settings(max_examples=400, deadline=None)
@given(DOCS, FIELD_SETS)
def test_undecoded_entry_answers_like_its_decoded_set(raw: Any, probe: frozenset[tuple[str, ...]]) -> None:
    lazy = mf.Entry("m", "Update", "v1", None, "", None, raw=raw, canonical=True)
    decoded = mf.decode(raw if raw is not None else {})
    assert lazy.owns_any(probe) == bool(decoded & probe)
    assert lazy.owns_anything() == bool(decoded)
    assert lazy.fields == decoded


@settings(max_examples=300, deadline=None)
@given(FIELD_SETS, FIELD_SETS, FIELD_SETS, FIELD_SETS)
def test_record_update_with_stored_entries_matches_decoded_entries(
    creator: frozenset[tuple[str, ...]],
    writer: frozenset[tuple[str, ...]],
    before: frozenset[tuple[str, ...]],
    after: frozenset[tuple[str, ...]],
) -> None:
    """The same update from stored (undecoded) entries and from decoded ones writes the
    same managedFields, except for the time of an entry that changes."""
    old = {p: 1 for p in before}
    new = {p: (2 if p in writer else 1) for p in after}
    stored = [
        mf.Entry("creator", "Update", "v1", "2026-01-01T00:00:00Z", "", creator).to_json(),
        mf.Entry("writer", "Update", "v1", "2026-01-02T00:00:00Z", "status", writer).to_json(),
    ]
    stored = [e for e in stored if mf.decode(e["fieldsV1"])]
    lazy = mf.decode_entries(stored, stored=True) or []
    eager = [
        mf.Entry(e.manager, e.operation, e.api_version, e.time, e.subresource, mf.decode(e.raw))
        for e in lazy
    ]
    kwargs: dict[str, Any] = {"manager": "writer", "api_version": "v1", "subresource": "status"}
    got = mf.encode_entries(mf.record_update(lazy, old, new, **kwargs))
    want = mf.encode_entries(mf.record_update(eager, old, new, **kwargs))
    for entry in got + want:
        if entry["manager"] == "writer" and entry["time"] != "2026-01-02T00:00:00Z":
            entry["time"] = "now"
    assert got == want
    untouched = [e for e in got if e["manager"] == "creator"]
    if untouched and not (creator & (set(old) ^ set(new) | {p for p in new if p in old and old[p] != new[p]})):
        # an entry the write did not touch is the stored document itself
        assert untouched[0]["fieldsV1"] is stored[0]["fieldsV1"]


@settings(max_examples=200, deadline=None)
@given(FIELD_SETS)
def test_an_entry_a_write_changed_is_encoded_once_per_field_set(fields: frozenset[tuple[str, ...]]) -> None:
    """Two entries owning the same fields share one document, equal to ``encode``, and an
    entry read back from it owns exactly those fields."""
    first = mf.Entry("m", "Update", "v1", "t", "status", fields).to_json()["fieldsV1"]
    second = mf.Entry("n", "Update", "v1", "t", "", frozenset(set(fields))).to_json()["fieldsV1"]
    assert first == mf.encode(fields)
    assert second is first
    stored = mf.decode_entries(
        [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": first}],
        stored=True,
    )
    assert stored is not None
    assert stored[0].fields == mf.decode(first) == fields
