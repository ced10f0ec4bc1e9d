"""``events.k8s.io/v1`` Events as a second view of the one stored collection of core Events.

A real server stores one kind of Event: what a kubelet writes through ``/api/v1`` is
listed and watched through ``/apis/events.k8s.io/v1`` and the other way round, under the
other field names (``regarding``/``involvedObject``, ``note``/``message``,
``reportingController``/``reportingComponent``, ``deprecatedSource``/``source``, ...).
This module is that conversion: requests under events.k8s.io are served from the core
collection, bodies and patches renamed on the way in, objects on the way out. A create
through events.k8s.io keeps its stricter validation (who reported what, and when).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from multidict import MultiDict

from . import errors
from .decoding import decode
from .errors import StatusError
from .resources import ResourceType
from .validation import invalid_status, validate_object

if TYPE_CHECKING:
    from .app import SimulatorAPI, Target

GROUP = "events.k8s.io"
KEY = (GROUP, "events")
API_VERSION = f"{GROUP}/v1"

#: events.k8s.io/v1 field -> core/v1 field (the others have the same name in both)
NEW_TO_CORE = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
CORE_TO_NEW = {core: new for new, core in NEW_TO_CORE.items()}
#: the order the real server writes an events.k8s.io/v1 Event's fields in
NEW_ORDER = (
    "kind",
    "apiVersion",
    "metadata",
    "eventTime",
    "series",
    "reportingController",
    "reportingInstance",
    "action",
    "reason",
    "regarding",
    "related",
    "note",
    "type",
    "deprecatedSource",
    "deprecatedFirstTimestamp",
    "deprecatedLastTimestamp",
    "deprecatedCount",
)
_SELECTOR_LABELS = {
    "regarding.": "involvedObject.",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
}


def to_new(core: dict[str, Any], *, typed: bool = True) -> dict[str, Any]:
    """A stored core Event as events.k8s.io/v1 shows it (``typed``: with kind/apiVersion)."""
    renamed = {CORE_TO_NEW.get(k, k): v for k, v in core.items() if k not in ("kind", "apiVersion")}
    if typed:
        renamed["kind"], renamed["apiVersion"] = "Event", API_VERSION
    ordered = {k: renamed.pop(k) for k in NEW_ORDER if k in renamed}
    ordered.update(renamed)
    return ordered


def to_core(new: dict[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event as the core collection stores it."""
    core = {NEW_TO_CORE.get(k, k): v for k, v in new.items() if k not in ("kind", "apiVersion")}
    return {"kind": "Event", "apiVersion": "v1", **core}


def core_patch(patch: Any, patch_type: str) -> Any:
    """A patch written against events.k8s.io names, for the stored core object."""
    if patch_type == "json":
        if not isinstance(patch, list):
            return patch
        return [
            {
                **op,
                **{
                    key: _core_pointer(op[key])
                    for key in ("path", "from")
                    if isinstance(op, dict) and isinstance(op.get(key), str)
                },
            }
            if isinstance(op, dict)
            else op
            for op in patch
        ]
    if isinstance(patch, dict):
        return {NEW_TO_CORE.get(k, k): v for k, v in patch.items() if k not in ("kind", "apiVersion")}
    return patch


def _core_pointer(pointer: str) -> str:
    parts = pointer.split("/")
    if len(parts) > 1:
        parts[1] = NEW_TO_CORE.get(parts[1], parts[1])
    return "/".join(parts)


def core_selector(selector: str | None) -> str | None:
    """Field labels of events.k8s.io (``regarding.name``) as the core ones they mean."""
    if not selector:
        return selector
    terms = []
    for term in selector.split(","):
        for new, core in _SELECTOR_LABELS.items():
            if term.startswith(new):
                term = core + term[len(new) :]
                break
        terms.append(term)
    return ",".join(terms)


def watch_line(line: bytes) -> bytes:
    """A watch event line with its Event in the events.k8s.io/v1 view."""
    event = orjson.loads(line)
    obj = event.get("object")
    if event.get("type") != "ERROR" and isinstance(obj, dict):
        if event.get("type") == "BOOKMARK":
            obj["kind"], obj["apiVersion"] = "Event", API_VERSION
        else:
            event["object"] = to_new(obj)
    return orjson.dumps(event) + b"\n"


def _list_body(response: web.StreamResponse) -> web.StreamResponse:
    """A core EventList response (list or deletecollection) as an events.k8s.io list."""
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    if not (response.headers.get("Content-Type") or "").startswith("application/json"):
        return response  # a Table: its rows read the same
    body = orjson.loads(response.body)
    if body.get("kind") != "EventList":
        return response
    body["apiVersion"] = API_VERSION
    body["items"] = [to_new(item, typed=False) for item in body.get("items") or []]
    return web.Response(
        body=orjson.dumps(body),
        status=response.status,
        content_type=None,
        headers={"Content-Type": "application/json"},
    )


def _json(obj: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(obj), status=status, content_type=None, headers={"Content-Type": "application/json"}
    )


def _strict_checks(obj: dict[str, Any], new_rt: ResourceType) -> None:
    """Type checks and the events.k8s.io validation of a new Event, before conversion."""
    obj = decode("Event", GROUP, "v1", obj)
    obj["apiVersion"] = API_VERSION
    causes = validate_object("Event", obj)
    if causes:
        name = (obj.get("metadata") or {}).get("name", "")
        raise StatusError(invalid_status("Event", name, causes, GROUP))


async def serve(api: SimulatorAPI, request: web.Request, t: Target, verb: str) -> web.StreamResponse:
    """Answer a request under events.k8s.io/v1 from the core Event collection."""
    from .app import PATCH_TYPES, Target, deleted_status

    store = api.store
    core_rt = store.registry.lookup("events")
    core_t = Target(core_rt, t.namespace, t.name, t.subresource)
    query: MultiDict[str] = MultiDict(request.query)
    if "fieldSelector" in query:
        query["fieldSelector"] = core_selector(query["fieldSelector"]) or ""
    dry_run = request.query.get("dryRun") == "All"
    if verb == "get":
        return _json(to_new(store.get_ref(core_rt, t.namespace, t.name or "")))
    if verb == "list":
        from .tables import wants_table

        table = wants_table(request.headers.get("Accept", ""))
        response = api._list(core_t, query, query.get("includeObject", "Metadata") if table else None)
        return _list_body(response)
    if verb == "watch":
        return await api._watch(request, core_t, query, transform=watch_line)
    if verb in ("create", "update"):
        body = await api._read_object(request, t.rt)
        if verb == "create":
            raw_meta = body.get("metadata")
            meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
            if t.namespace and not meta.get("namespace"):
                body["metadata"] = {**meta, "namespace": t.namespace}
            _strict_checks(body, t.rt)
            made = await store.create(core_rt, t.namespace, to_core(body), dry_run=dry_run)
            return _json(to_new(made), 201)
        replaced = await store.replace(core_rt, t.namespace, t.name or "", to_core(body), dry_run=dry_run)
        return _json(to_new(replaced))
    if verb == "patch":
        patch_type = PATCH_TYPES.get(request.content_type)
        if patch_type is None:
            raise errors.unsupported_media_type()
        patch = api._decode(await request.read(), t.rt, yaml_body=False)
        patched = await store.patch(
            core_rt, t.namespace, t.name or "", core_patch(patch, patch_type), patch_type, dry_run=dry_run
        )
        return _json(to_new(patched))
    if verb == "delete":
        options = await api._delete_options(request)
        gone = await store.delete(
            core_rt,
            t.namespace,
            t.name or "",
            grace_period_seconds=options.get("gracePeriodSeconds"),
            propagation_policy=options.get("propagationPolicy"),
            preconditions=options.get("preconditions"),
            dry_run=options.get("dryRun") == ["All"],
        )
        return _json(deleted_status(t.rt, gone))
    if verb == "deletecollection":
        return _list_body(await api._delete_collection(request, core_t))
    raise errors.method_not_allowed(verb, t.rt.plural)
