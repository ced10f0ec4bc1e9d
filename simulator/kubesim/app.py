"""The simulator's HTTP face: the Kubernetes REST API over aiohttp, backed by ``Store``.

Paths are parsed by hand rather than with one aiohttp route per resource, because
resources appear at run time (CRDs) and the same path shapes repeat for every group.
Everything that can go wrong becomes a real ``Status`` body through ``StatusError``;
no request ever gets a traceback or a half-applied change (the store validates before
it writes, and writes synchronously).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from . import errors, event_views, representation
from .auth import Auth
from .custom_resources import printer as custom_printer
from .custom_resources import scale_of, scaled
from .decoding import (
    MAX_BODY_DEPTH,
    OBJECT_META_FIELDS,
    nested_deeper_than,
    unknown_fields,
)
from .errors import StatusError
from .faults import Faults, RequestCounters, RequestInfo
from .field_errors import forbidden, required
from .flowcontrol import TICKET_KEY, FlowControl, Rejected, too_many_requests_response
from .flowcontrol import add_response_headers as add_flow_headers
from .json_values import go_unmarshal_type
from .list_options import LATEST, decode_continue, encode_continue, validate_list_options
from .managed_fields import manager_from, validate_write_options
from .patching import PatchError, apply_json_patch, apply_merge_patch
from .protobuf import PROTOBUF_CONTENT_TYPE, decode_object
from .resources import REAL_GROUP_ORDER, ResourceType
from .store import (
    ListSnapshots,
    Store,
    Watch,
    WatchEvent,
    dumps,
    parse_resource_version,
    too_large_resource_version,
    too_old_resource_version,
)
from .structural_schema import unknown_schema_fields
from .tables import TABLE_CONTENT_TYPE, build_table, wants_table

log = logging.getLogger(__name__)

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
#: what a custom resource's PATCH accepts (no strategic merge: there is no Go struct)
CUSTOM_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
)
BODY_TYPES = ("application/json", "application/yaml", PROTOBUF_CONTENT_TYPE, "")
VERSION_INFO = {
    "major": "1",
    "minor": "36",
    "emulationMajor": "1",
    "emulationMinor": "36",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "35",
    "gitVersion": "v1.36.2",
    "gitCommit": "98b35193b2ac7a23a673325f5e9b830ecd5ba406",
    "gitTreeState": "dirty",
    "buildDate": "2026-11-01T00:00:00Z",
    "goVersion": "go1.27.3-X:nojsonv2",
    "compiler": "gc",
    "platform": "linux/amd64",
}
INFO_KEY = web.RequestKey("sim_info", RequestInfo)
RESET_KEY = web.RequestKey("sim_reset", bool)  # the connection was cut by a scripted fault
WARNINGS_KEY = web.RequestKey("sim_warnings", list)  # texts of the response's Warning headers
DUPLICATES_KEY = web.RequestKey("sim_duplicates", list)  # paths of duplicate JSON fields
_DUPLICATE_SEEN: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sim_duplicate_seen", default=False
)


def _pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict (the last duplicate wins, as in Go), noting duplicates."""
    out = dict(pairs)
    if len(out) != len(pairs):
        _DUPLICATE_SEEN.set(True)
    return out


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's members in order, kept as pairs to find duplicate keys."""


def _decode_with_duplicates(raw: bytes) -> tuple[Any, list[str]]:
    """The body parsed again, slowly, for the paths of its duplicate fields (rare)."""
    tree = json.loads(raw, object_pairs_hook=_Pairs)
    duplicates: list[str] = []

    def convert(value: Any, path: str) -> Any:
        if isinstance(value, _Pairs):
            out: dict[str, Any] = {}
            for key, item in value:
                where = f"{path}.{key}" if path else key
                if key in out and where not in duplicates:
                    duplicates.append(where)
                out[key] = convert(item, where)
            return out
        if isinstance(value, list):
            return [convert(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return value

    return convert(tree, ""), duplicates
SHAPE_KEY = web.RequestKey("sim_shape", str)  # YAML or a metadata-only view (representation)


class _YamlAsJsonLoader(yaml.SafeLoader):
    """YAML as the real server reads it: converted to JSON first, so an unquoted date
    stays the string it was written as instead of becoming a Python date."""


_YamlAsJsonLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml_key(key: Any) -> str:
    """A YAML map key as YAML-to-JSON conversion writes it: JSON object keys are strings."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int | float | str):
        return str(key)
    raise ValueError(f"yaml: invalid map key: {key!r}")


def _json_ready(value: Any) -> Any:
    """What survives YAML-to-JSON: string keys, sets as maps of nulls, bytes as text,
    finite numbers (JSON has no NaN or Infinity)."""
    if isinstance(value, dict):
        return {_yaml_key(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, set):
        return {_yaml_key(k): None for k in value}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"json: unsupported value: {value}")
    if isinstance(value, datetime.date):  # an explicit !!timestamp tag
        return value.isoformat()
    return value


_TOO_DEEP = object()  # marks a body whose parse ran out of stack


def _refuse_constant(raw: bytes) -> Callable[[str], Any]:
    """Python's json reads NaN and Infinity; Go's decoder, like JSON itself, does not."""
    text = raw.decode("utf-8", "replace")

    def refuse(name: str) -> Any:
        raise json.JSONDecodeError("not JSON", text, max(text.find(name), 0))

    return refuse


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed API path."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


class PlainNotFound(Exception):
    """An unknown API group or path: the real server answers with plain text here."""


def raw_json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(
        body=body, status=status, content_type=None, headers={"Content-Type": "application/json"}
    )


def json_response(
    body: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    return web.Response(
        body=dumps(body),
        status=status,
        content_type=None,
        headers={"Content-Type": content_type, **(headers or {})},
    )


def status_response(exc: StatusError) -> web.Response:
    return json_response(exc.status, exc.code, exc.headers)


def _bool_param(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


def _int_param(query: Any, name: str) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: "{raw}" is not an integer') from None


class SimulatorAPI:
    """Request handling for one store; owns the fault script and the counters."""

    def __init__(
        self,
        store: Store,
        faults: Faults,
        counters: RequestCounters,
        token: str | None = None,
        auth: Auth | None = None,
        flow_control: FlowControl | bool = True,
    ) -> None:
        self.store = store
        self.faults = faults
        self.counters = counters
        # authentication and RBAC (kubesim.auth); off unless asked for, or a token is given
        self.auth = auth if auth is not None else Auth(store, admin_token=token)
        self.token = self.auth.admin_token
        # API Priority and Fairness (kubesim.flowcontrol): on unless turned off, as on a
        # real server; ``False`` serves requests in arrival order
        self.flow: FlowControl | None = (
            flow_control
            if isinstance(flow_control, FlowControl)
            else FlowControl() if flow_control else None
        )
        self.server_address = "127.0.0.1:0"
        self.list_snapshots = ListSnapshots(max_age=store.options.history_age)
        #: how long a read at a future resourceVersion waits before its 504
        self.version_wait_seconds = 3.0

    # ------------------------------------------------------------ dispatching
    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        info = RequestInfo("discovery", "")
        status = 500
        response: web.StreamResponse
        try:
            path = request.path
            if path.startswith("/_sim/"):
                info = RequestInfo("admin", path)
                self.auth.admit(request)  # 401 / 403 (a no-op with authentication off)
                response = await self._admin(request)
            else:
                response, info = await self._api(request)
                shape = request.get(SHAPE_KEY)
                if shape is not None:
                    response = representation.reshape(
                        response, shape, request.headers.get("Accept", "")
                    )
            status = 0 if request.get(RESET_KEY) else response.status
            if not response.prepared:
                for text in request.get(WARNINGS_KEY, ()):
                    # RFC 7234 warn-code 299, agent "-", the text quoted
                    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
                    response.headers.add("Warning", f'299 - "{quoted}"')
            return response
        except StatusError as exc:
            status = exc.code
            if request.get(SHAPE_KEY) == representation.YAML:
                return representation.reshape(status_response(exc), representation.YAML, "")
            return status_response(exc)
        except Rejected as exc:  # flow control's 429
            status = 429
            return too_many_requests_response(exc.retry_after)
        except PlainNotFound:
            status = 404
            return web.Response(
                text="404 page not found\n", status=404, content_type="text/plain", charset="utf-8"
            )
        except ConnectionResetError:
            status = 0
            raise
        except asyncio.CancelledError:
            status = 499
            raise
        except Exception as exc:  # never a traceback to the client
            log.exception("simulator failed on %s %s", request.method, request.path)
            status = 500
            return status_response(errors.internal_error(type(exc).__name__))
        finally:
            self.store.flush_due_watches()
            ticket = request.get(TICKET_KEY)
            if ticket is not None and ticket.holding and self.flow is not None:
                self.flow.release(ticket)  # the seat goes to the next in line
            self.counters.record(
                request.method,
                request.path_qs,
                request.get(INFO_KEY, info),
                status,
                time.perf_counter() - started,
            )

    async def _api(self, request: web.Request) -> tuple[web.StreamResponse, RequestInfo]:
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if self.faults.in_outage:  # a server that is down answers nothing, discovery included
            if self.faults.outage_mode == "reset":
                return await self._reset(request), RequestInfo("discovery", "")
            raise errors.service_unavailable()
        self.auth.admit(request)  # 401 / 403 before anything is looked up, as on a real server
        flow = self.flow
        if flow is not None:  # queued fairly among the other clients' requests, or 429
            user = (
                self.auth.user_of(request)
                if self.auth.enabled
                else flow.client_user(request.headers.get("User-Agent", ""), request.remote)
            )
            await flow.admit(request, user)
        if parts == ["version"] or parts == ["version", ""]:
            return json_response(VERSION_INFO), RequestInfo("discovery", "version")
        if parts and parts[0] == "openapi":
            return self._openapi(parts), RequestInfo("discovery", "openapi")
        if parts and parts[0] in ("healthz", "livez", "readyz"):
            return web.Response(text="ok"), RequestInfo("discovery", parts[0])
        if not parts or parts[0] not in ("api", "apis"):
            raise PlainNotFound()
        if method == "GET" and self._is_discovery(parts):
            return self._discovery(request, parts), RequestInfo("discovery", "/".join(parts))
        target, watch_prefix = self._parse(parts)
        verb = self._verb(method, target, request.query, watch_prefix)
        resource = target.rt.plural + (f"/{target.subresource}" if target.subresource else "")
        if target.subresource != "log":  # the media type of the answer, or 406 before anything
            shape = representation.negotiate(request.headers.get("Accept", ""))
            if shape in (representation.PARTIAL, representation.PARTIAL_LIST):
                representation.check_scope(
                    shape,
                    collection=target.name is None,
                    watch=verb == "watch",
                    kind=target.rt.kind,
                    group=target.rt.group,
                )
            if shape not in (representation.JSON, representation.TABLE):
                request[SHAPE_KEY] = shape
        info = RequestInfo(verb, resource, target.namespace, target.name, target.rt.group)
        request[INFO_KEY] = info  # counted even when a fault or error ends the request
        action = await self.faults.before(info)
        if action == "reset":
            return await self._reset(request), info
        if action == "expire":
            if verb == "watch":
                asked = request.query.get("resourceVersion")
                event = WatchEvent(
                    "ERROR",
                    too_old_resource_version(
                        (parse_resource_version(asked) if asked else 0) or 1,
                        self.store.resource_version,
                    ).status,
                )
                return await self._stream_single(request, event), info
            raise errors.list_too_old()
        if target.rt.key == event_views.KEY:  # the core Events, seen as events.k8s.io/v1
            return await event_views.serve(self, request, target, verb), info
        # the review APIs and TokenRequest: answered by kubesim.auth, never stored
        served = await self.auth.serve(
            request, target.rt.group, target.rt.plural, target.namespace, target.name,
            target.subresource, verb,
        )
        if served is not None:
            return served, info
        return await self._dispatch(request, target, verb), info

    async def _reset(self, request: web.Request) -> web.StreamResponse:
        """Cut the connection after a partial response, as a crashing server would.

        The cut response is returned, not raised: aiohttp then finds the transport
        closed and drops it quietly, where an exception would log a traceback for
        every scripted reset. ``request[RESET_KEY]`` tells the counters (status 0).
        """
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Content-Length": "4096"}
        )
        if request.method != "HEAD":  # a HEAD answer has no body to cut: it is cut at once
            await response.prepare(request)
            await response.write(b'{"kind":"Status","apiVersion":"v1","metadata":')
        transport = request.transport
        if transport is not None:
            transport.abort()
        request[RESET_KEY] = True
        return response

    def _is_discovery(self, parts: list[str]) -> bool:
        if parts[0] == "api":
            return len(parts) <= 2
        return len(parts) <= 3

    def _parse(self, parts: list[str]) -> tuple[Target, bool]:
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
            if version != "v1":
                raise PlainNotFound()
        else:
            group, version, rest = parts[1], parts[2], parts[3:]
            served = self.store.registry.group_versions()
            if group not in served and group not in REAL_GROUP_ORDER:
                raise PlainNotFound()
            if version not in served.get(group, ("v1",)):  # an unknown version: no route at all
                raise PlainNotFound()
        watch_prefix = False
        if rest and rest[0] == "watch":
            watch_prefix, rest = True, rest[1:]
        if not rest:
            raise errors.resource_not_found()
        namespace = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (group == "" and rest[2] in ("status", "finalize"))
        ):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise errors.resource_not_found()
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        try:
            rt = self.store.registry.lookup(plural, group, version)
        except StatusError:
            raise errors.resource_not_found() from None
        if sub is not None and sub not in rt.subresources:
            raise errors.resource_not_found()
        if rt.namespaced and namespace is None and name is not None:
            raise errors.resource_not_found()
        if not rt.namespaced and namespace is not None:
            raise errors.resource_not_found()
        return Target(rt, namespace, name, sub), watch_prefix

    def _verb(self, method: str, target: Target, query: Any, watch_prefix: bool) -> str:
        collection = target.name is None
        if method in ("GET", "HEAD"):
            if collection:
                return "watch" if watch_prefix or _bool_param(query.get("watch")) else "list"
            return "watch" if watch_prefix else "get"
        if method == "POST":
            if collection or target.subresource in ("binding", "token"):
                return "create"
        elif method == "PUT" and not collection:
            return "update"
        elif method == "PATCH" and not collection:
            return "patch"
        elif method == "DELETE":
            return "deletecollection" if collection else "delete"
        raise errors.method_not_allowed(method.lower(), target.rt.plural)

    async def _dispatch(self, request: web.Request, t: Target, verb: str) -> web.StreamResponse:
        rt, q = t.rt, request.query
        dry_run = q.get("dryRun") == "All"
        if verb in ("delete", "deletecollection"):
            validate_write_options("DeleteOptions", q)
        table = wants_table(request.headers.get("Accept", ""))
        include = q.get("includeObject", "Metadata")
        if table and include not in ("None", "Metadata", "Object"):
            raise errors.bad_request(
                f'includeObject: Unsupported value: "{include}": supported values: "Metadata", '
                '"None", "Object"'
            )
        if verb == "list":
            validate_list_options(q, watch=False)
            await self._wait_for_version(q.get("resourceVersion"))
            return self._list(t, q, include if table else None)
        if verb == "watch":
            validate_list_options(q, watch=True)
            return await self._watch(request, t, q)
        if verb == "get":
            if t.subresource == "log":
                return await self._pod_log(request, t)
            await self._wait_for_version(q.get("resourceVersion"))
            obj = self.store.get_ref(rt, t.namespace, t.name or "")
            if t.subresource == "scale":
                return json_response(scale_of(obj, self._scale_spec(rt)))
            if table:
                meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                return json_response(
                    build_table(
                        rt,
                        [obj],
                        list_meta=meta,
                        include_object=include,
                        custom_printer=self._custom_printer(rt),
                    ),
                    content_type=TABLE_CONTENT_TYPE,
                )
            return json_response(obj)
        if verb == "create":
            if t.subresource == "binding":
                body = await self._read_object(request, None)
                target = body.get("target") or {}
                if not target.get("name"):
                    raise errors.invalid(
                        "Binding",
                        t.name or "",
                        [
                            required("target.name")
                        ],
                    )
                await self.store.bind(t.namespace or "", t.name or "", target["name"])
                return json_response(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "code": 201,
                    },
                    201,
                )
            validate_write_options("CreateOptions", q)
            body = await self._read_object(request, rt)
            obj = await self.store.create(
                rt, t.namespace, body, dry_run=dry_run, owned=True, manager=_manager(request)
            )
            return raw_json_response(self.store.encode(obj), 201)
        if t.subresource == "scale" and verb in ("update", "patch"):
            return await self._write_scale(request, t, verb, dry_run)
        if verb == "update":
            validate_write_options("UpdateOptions", q)
            body = await self._read_object(request, rt)
            obj = await self.store.replace(
                rt,
                t.namespace,
                t.name or "",
                body,
                subresource=t.subresource,
                dry_run=dry_run,
                owned=True,
                manager=_manager(request),
            )
            return raw_json_response(self.store.encode(obj))
        if verb == "patch":
            ctype = request.content_type
            patch_type = PATCH_TYPES.get(ctype)
            custom = self.store.registry.schema(rt) is not None
            if custom and ctype not in CUSTOM_PATCH_TYPES:
                raise errors.unsupported_media_type_for(
                    "the body of the request was in an unknown format - accepted media types "
                    "include: " + ", ".join(CUSTOM_PATCH_TYPES)
                )
            if patch_type is None:
                raise errors.unsupported_media_type()
            validate_write_options("PatchOptions", q, apply=patch_type == "apply")
            raw = await read_body(request)
            patch = self._decode(raw, rt, yaml_body=patch_type == "apply", request=request)
            if patch_type == "apply":
                return await self._apply(request, t, patch, dry_run)
            if patch_type in ("merge", "strategic") and isinstance(patch, dict):
                # what the patch adds is decoded with the object: unknown fields are
                # warned about or refused like a create's
                self._field_validation(request, _patch_additions(patch), rt, patch=True)
            obj = await self.store.patch(
                rt,
                t.namespace,
                t.name or "",
                patch,
                patch_type,
                subresource=t.subresource,
                dry_run=dry_run,
                manager=_manager(request),
            )
            return raw_json_response(self.store.encode(obj))
        if verb == "delete":
            obj = await self._delete_one(request, rt, t.namespace, t.name or "")
            if rt.returns_deleted or self.store.holds(obj):
                # the bytes of the object's watch event, when the delete just wrote it
                return raw_json_response(self.store.encode(obj))
            return json_response(deleted_status(rt, obj))
        if verb == "deletecollection":
            return await self._delete_collection(request, t)
        raise errors.method_not_allowed(verb, rt.plural)

    def _scale_spec(self, rt: ResourceType) -> dict[str, Any]:
        info = self.store.custom_versions.get((rt.group, rt.version, rt.plural))
        if info is None or info.scale is None:
            raise errors.resource_not_found()
        return info.scale

    def _custom_printer(self, rt: ResourceType) -> Any:
        """A custom resource's printer (its CRD's additionalPrinterColumns), else None."""
        info = self.store.custom_versions.get((rt.group, rt.version, rt.plural))
        return None if info is None else custom_printer(info.columns)

    async def _write_scale(
        self, request: web.Request, t: Target, verb: str, dry_run: bool
    ) -> web.Response:
        """PUT or PATCH of a custom resource's ``/scale``: the replicas land at the CRD's
        ``specReplicasPath`` of the resource itself."""
        rt, q = t.rt, request.query
        scale = self._scale_spec(rt)
        current = self.store.get_ref(rt, t.namespace, t.name or "")
        shown = scale_of(current, scale)
        raw = await read_body(request)
        if verb == "update":
            validate_write_options("UpdateOptions", q)
            body = self._decode(raw, None, yaml_body=request.content_type == "application/yaml")
        else:
            patch_type = PATCH_TYPES.get(request.content_type)
            if patch_type is None or patch_type == "apply":
                raise errors.unsupported_media_type()
            validate_write_options("PatchOptions", q)
            patch = self._decode(raw, None, yaml_body=False)
            try:
                if patch_type == "json" and isinstance(patch, list):
                    body = apply_json_patch(shown, patch)
                elif patch_type != "json" and isinstance(patch, dict):
                    body = apply_merge_patch(shown, patch)
                else:
                    raise errors.bad_request("the patch is not of the patch type's shape")
            except PatchError as exc:
                raise StatusError(exc.status()) from None
        if not isinstance(body, dict):
            raise errors.bad_request("the body of a Scale must be a JSON object")
        wanted_rv = (body.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise errors.stale_conflict(rt.plural, t.name or "", rt.group)
        updated = await self.store.replace(
            rt,
            t.namespace,
            t.name or "",
            scaled(current, scale, body),
            dry_run=dry_run,
            owned=True,
            manager=_manager(request),
        )
        return json_response(scale_of(updated, scale))

    async def _apply(
        self, request: web.Request, t: Target, config: Any, dry_run: bool
    ) -> web.Response:
        """Server-side apply: the body is a (partial) object of the target's kind."""
        rt = t.rt
        if not isinstance(config, dict):
            raise errors.bad_request(
                f"error decoding YAML: json: cannot unmarshal {go_unmarshal_type(config)} into Go "
                "value of type map[string]interface {}"
            )
        if not config.get("apiVersion") or not config.get("kind"):
            missing = "apiVersion" if not config.get("apiVersion") else "kind"
            raise errors.bad_request(f"invalid object type: {missing} must be set")
        self._check_kind(config, rt)
        self._field_validation(request, config, rt)
        obj, created = await self.store.apply(
            rt,
            t.namespace,
            t.name or "",
            config,
            manager=request.query.get("fieldManager", ""),
            force=_bool_param(request.query.get("force")),
            subresource=t.subresource,
            dry_run=dry_run,
        )
        return raw_json_response(self.store.encode(obj), 201 if created else 200)

    # ----------------------------------------------------------------- bodies
    async def _read_object(self, request: web.Request, rt: ResourceType | None) -> dict[str, Any]:
        ctype = request.content_type
        if ctype not in BODY_TYPES:
            raise StatusError(
                errors.status_body(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json, application/yaml, application/vnd.kubernetes.protobuf",
                    {},
                )
            )
        raw = await read_body(request)
        if ctype == PROTOBUF_CONTENT_TYPE:
            obj = decode_object(raw, rt.kind if rt else "Binding")
        else:
            obj = self._decode(raw, rt, yaml_body=ctype == "application/yaml", request=request)
        if obj is None:  # JSON null decodes to an empty TypeMeta
            raise errors.bad_request("Object 'Kind' is missing in 'null'")
        if not isinstance(obj, dict):
            kind = rt.kind if rt else "Binding"
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {kind}): couldn't get "
                f"version/kind; json parse error: json: cannot unmarshal {go_unmarshal_type(obj)} "
                'into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }'
            )
        if rt is not None:
            self._check_kind(obj, rt)
            self._field_validation(request, obj, rt)
        return obj

    def _decode(
        self,
        raw: bytes,
        rt: ResourceType | None,
        *,
        yaml_body: bool,
        request: web.Request | None = None,
    ) -> Any:
        kind = rt.kind if rt else "Binding"
        try:
            if yaml_body:
                value = _json_ready(yaml.load(raw, Loader=_YamlAsJsonLoader))
            else:
                value = json.loads(
                    raw, parse_constant=_refuse_constant(raw), object_pairs_hook=_pairs_to_dict
                )
                if _DUPLICATE_SEEN.get():
                    _DUPLICATE_SEEN.set(False)
                    value, duplicates = _decode_with_duplicates(raw)
                    if duplicates and request is not None:
                        request[DUPLICATES_KEY] = duplicates
        except RecursionError:  # a self-referencing YAML alias, or absurd JSON nesting
            value = _TOO_DEEP
        except (ValueError, yaml.YAMLError) as exc:
            text = raw.decode("utf-8", "replace")
            excerpt = text[:30] + " ..." if len(text) > 30 else text
            what = (
                "unexpected end of JSON input"
                if isinstance(exc, json.JSONDecodeError) and exc.pos >= len(text.rstrip())
                else (
                    f"invalid character {text[getattr(exc, 'pos', 0) : getattr(exc, 'pos', 0) + 1]!r} looking for beginning of value"
                )
            )
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {kind}): couldn't get "
                f"version/kind; json parse error: {what} ({excerpt})"
            ) from None
        if value is _TOO_DEEP or nested_deeper_than(value, MAX_BODY_DEPTH):
            # every later step walks the body recursively; refuse it before any does
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {kind}): couldn't get "
                f"version/kind; json parse error: exceeded max depth of {MAX_BODY_DEPTH}"
            )
        return value

    def _check_kind(self, obj: dict[str, Any], rt: ResourceType) -> None:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        for field, value in (("apiVersion", api_version), ("kind", kind)):
            if value is not None and not isinstance(value, str):
                # the server reads TypeMeta first; a non-string there fails that decode
                raise errors.bad_request(
                    f"the object provided is unrecognized (must be of type {rt.kind}): couldn't "
                    f"get version/kind; json parse error: json: cannot unmarshal "
                    f"{go_unmarshal_type(value)} into Go struct field .{field} of type string"
                )
        if api_version and api_version != rt.api_version:
            if (
                kind == rt.kind
                and self.store.registry.schema(rt) is None
                and self.store.registry.by_kind(kind, api_version) is None
            ):
                # a built-in kind the scheme has not under that version: the decoder fails
                raise errors.bad_request(
                    f'{kind} in version "{api_version.rsplit("/", 1)[-1]}" cannot be handled as '
                    f'a {rt.kind}: no kind "{kind}" is registered for version "{api_version}" in '
                    'scheme "k8s.io/kubernetes/pkg/api/legacyscheme/scheme.go:30"'
                )
            if kind and kind != rt.kind:
                raise errors.bad_request(
                    f'{kind} in version "{api_version.rsplit("/", 1)[-1]}" cannot be handled as a '
                    f"{rt.kind}: converting ({api_version.rsplit('/', 1)[-1]}.{kind}) to "
                    f"({rt.group or 'core'}.{rt.kind}): unknown conversion"
                )
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
            )
        if kind and kind != rt.kind:
            raise errors.bad_request(
                f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: converting '
                f"({rt.version}.{kind}) to ({rt.group or 'core'}.{rt.kind}): unknown conversion"
            )

    def _field_validation(
        self, request: web.Request, obj: dict[str, Any], rt: ResourceType, *, patch: bool = False
    ) -> None:
        """Unknown and duplicate fields under ``fieldValidation``: Strict refuses them
        (400); Warn, the default, lets the decoder drop them (the last duplicate wins) and
        says so in ``Warning`` headers; Ignore drops them silently. A custom resource's
        unknown fields are the ones its schema prunes."""
        schema = self.store.registry.schema(rt)
        if schema is not None:
            meta = obj.get("metadata")
            unknown = [f"metadata.{k}" for k in meta if k not in OBJECT_META_FIELDS] if isinstance(
                meta, dict
            ) else []
            unknown += unknown_schema_fields(schema, obj)
        else:
            unknown = unknown_fields(rt.kind, rt.group, obj)
        problems = [f'unknown field "{u}"' for u in unknown]
        problems += [f'duplicate field "{d}"' for d in request.get(DUPLICATES_KEY, ())]
        if not problems:
            return
        mode = request.query.get("fieldValidation") or "Warn"
        if mode == "Strict":
            listed = ", ".join(problems)
            if patch:  # the patcher reports the strict decoding error on its own
                raise errors.bad_request(f"strict decoding error: {listed}")
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {listed}"
            )
        if mode != "Ignore":
            request[WARNINGS_KEY] = problems

    async def _delete_one(
        self, request: web.Request, rt: ResourceType, namespace: str | None, name: str
    ) -> dict[str, Any]:
        """DELETE one object as the request's DeleteOptions ask."""
        options = await self._delete_options(request)
        return await self.store.delete(
            rt,
            namespace,
            name,
            grace_period_seconds=options.get("gracePeriodSeconds"),
            propagation_policy=options.get("propagationPolicy"),
            preconditions=options.get("preconditions"),
            dry_run=options.get("dryRun") == ["All"],
        )

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        """DeleteOptions from the body when there is one, else from the query (real precedence)."""
        raw = await read_body(request)
        if raw.strip():
            try:
                options = json.loads(raw, parse_constant=_refuse_constant(raw))
            except (ValueError, RecursionError):
                raise errors.bad_request(
                    "the object provided is unrecognized (must be of type DeleteOptions): couldn't "
                    "get version/kind; json parse error: unexpected end of JSON input"
                ) from None
            if not isinstance(options, dict):
                raise errors.bad_request("DeleteOptions must be a JSON object")
        else:
            q = request.query
            options = {}
            grace = _int_param(q, "gracePeriodSeconds")
            if grace is not None:
                options["gracePeriodSeconds"] = grace
            if "propagationPolicy" in q:
                options["propagationPolicy"] = q["propagationPolicy"]
            if "orphanDependents" in q:
                options["orphanDependents"] = _bool_param(q["orphanDependents"])
            if q.getall("dryRun", []):
                options["dryRun"] = q.getall("dryRun")
        if "orphanDependents" in options and options["orphanDependents"] is not None:
            if options.get("propagationPolicy"):
                raise errors.invalid(
                    "DeleteOptions",
                    "",
                    [
                        forbidden(
                            "propagationPolicy",
                            "orphanDependents and deletionPropagation cannot be both set",
                        )
                    ],
                )
            options["propagationPolicy"] = "Orphan" if options["orphanDependents"] else "Background"
        grace = options.get("gracePeriodSeconds")
        if grace is not None and not isinstance(grace, int):
            raise errors.bad_request("gracePeriodSeconds must be an integer")
        return options

    # ------------------------------------------------------------- list/watch
    async def _wait_for_version(self, rv_param: str | None) -> None:
        """A read at a version the store has not reached waits for it (up to 3 s, the
        watch cache's block timeout), then is a 504 with ``Retry-After: 1``."""
        if rv_param in (None, "", "0"):
            return
        wanted = parse_resource_version(rv_param)
        if wanted > self.store.resource_version and not await self.store.wait_for_version(
            wanted, self.version_wait_seconds
        ):
            raise too_large_resource_version(wanted, self.store.resource_version)

    def _list(self, t: Target, q: Any, table: str | None = None) -> web.Response:
        """A list (or, for kubectl, a Table) page: selectors, resourceVersion rules, paging."""
        rt = t.rt
        # the real storage pages only for limit > 0; zero or negative means "everything"
        limit = max(_int_param(q, "limit") or 0, 0)
        token = q.get("continue")
        rv_param = q.get("resourceVersion")
        match = q.get("resourceVersionMatch")
        if rv_param == "0" and match != "Exact" and not token:
            limit = 0  # served from the watch cache, which does not page
        if token and rv_param not in (None, "", "0"):
            raise errors.bad_request(
                "specifying resource version is not allowed when using continue"
            )
        start: tuple[str, str] | None = None
        labels, fields = q.get("labelSelector"), q.get("fieldSelector")
        query = (rt.key, t.namespace or "", labels or "", fields or "")
        if token:
            token_rv, start = decode_continue(token)
            if token_rv == LATEST:  # the replacement of an expired token: go on at the newest
                token_rv = self.store.resource_version
            if token_rv < self.store.oldest_resumable_version:
                body = errors.expired(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use the "
                    "continue token in this response to retrieve the remainder of the results. "
                    "Continuing with the provided token results in an inconsistent list - objects "
                    "that were created, modified, or deleted between the time the first chunk was "
                    "returned and now may show up in the list."
                )
                body.status["metadata"] = {"continue": encode_continue(LATEST, start)}
                raise body
            cached = self.list_snapshots.page_after(
                query, token_rv, start, limit, self.store.oldest_resumable_version, time.monotonic()
            )
            if cached is not None:
                return self._list_page(rt, cached[0], token_rv, cached[1], limit, query, table)
            items, rv = self.store.list_refs(
                rt,
                t.namespace,
                label_selector=labels,
                field_selector=fields,
                resource_version=str(token_rv),
                exact=True,
            )
        else:
            exact = match == "Exact" or (
                bool(limit) and rv_param not in (None, "", "0") and match is None
            )
            items, rv = self.store.list_refs(
                rt,
                t.namespace,
                label_selector=labels,
                field_selector=fields,
                resource_version=rv_param,
                resource_version_match=match,
                exact=exact,
            )
        if limit and len(items) > limit:
            # remembered whole, so the following pages are a bisect and a slice
            self.list_snapshots.remember(query, rv, items, time.monotonic())
        if start is not None:
            items = [o for o in items if _objkey(o) > start]
        remaining = max(len(items) - limit, 0) if limit else 0
        return self._list_page(
            rt, items[:limit] if limit else items, rv, remaining, limit, query, table
        )

    def _list_page(
        self,
        rt: ResourceType,
        items: list[dict[str, Any]],
        rv: int,
        remaining: int,
        limit: int,
        query: tuple[Any, ...],
        table: str | None,
    ) -> web.Response:
        """The response for one page; ``remaining`` items follow it in the same list."""
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit and remaining > 0:
            meta["continue"] = encode_continue(rv, _objkey(items[-1]))
            if not query[2] and not query[3]:  # no label or field selector
                meta["remainingItemCount"] = remaining
        if table is not None:
            body = build_table(
                rt,
                items,
                list_meta=meta,
                include_object=table,
                custom_printer=self._custom_printer(rt),
            )
            return json_response(body, content_type=TABLE_CONTENT_TYPE)
        keep_kind = rt.group not in (
            "",
            "events.k8s.io",
            "coordination.k8s.io",
            "apiextensions.k8s.io",
        )
        if keep_kind:
            listed = items
        else:
            listed = [
                {k: v for k, v in o.items() if k != "kind" and k != "apiVersion"} for o in items
            ]
        body = {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": listed,
        }
        return json_response(body)

    async def _watch(
        self,
        request: web.Request,
        t: Target,
        q: Any,
        transform: Callable[[bytes], bytes] | None = None,
    ) -> web.StreamResponse:
        timeout = _int_param(q, "timeoutSeconds")
        send_initial = q.get("sendInitialEvents")
        rv = q.get("resourceVersion")
        if rv not in (None, ""):
            parse_resource_version(rv)
        watch = self.store.watch(
            t.rt,
            t.namespace,
            resource_version=rv,
            label_selector=q.get("labelSelector"),
            field_selector=q.get("fieldSelector") if not t.name else f"metadata.name={t.name}",
            allow_bookmarks=_bool_param(q.get("allowWatchBookmarks")),
            send_initial_events=None if send_initial is None else _bool_param(send_initial),
            timeout_seconds=timeout,
        )
        if wants_table(request.headers.get("Accept", "")):
            return await self._stream(request, watch, table=q.get("includeObject", "Metadata"))
        if request.get(SHAPE_KEY) == representation.PARTIAL:  # metadata-only objects
            transform = representation.then_partial(transform, request.headers.get("Accept", ""))
        return await self._stream(request, watch, transform=transform)

    def _table_line(self, watch: Watch, event: WatchEvent, include: str, first: bool) -> bytes:
        """A watch event whose object is a one-row Table (what ``kubectl get -w`` reads)."""
        if event.type not in ("ADDED", "MODIFIED", "DELETED"):
            return event.line()
        meta = {"resourceVersion": event.object.get("metadata", {}).get("resourceVersion", "")}
        table = build_table(
            watch.rt,
            [event.object],
            list_meta=meta,
            include_object=include,
            with_columns=first,
            custom_printer=self._custom_printer(watch.rt),
        )
        return dumps({"type": event.type, "object": table}) + b"\n"

    async def _stream(
        self,
        request: web.Request,
        watch: Watch,
        table: str | None = None,
        transform: Callable[[bytes], bytes] | None = None,
    ) -> web.StreamResponse:
        ctype = TABLE_CONTENT_TYPE if table is not None else "application/json"
        if request.method == "HEAD":  # headers only: streamed bytes would corrupt keep-alive
            watch.close("HEAD request")
            return web.Response(status=200, headers={"Content-Type": ctype})
        response = web.StreamResponse(status=200, headers={"Content-Type": ctype})
        response.enable_chunked_encoding()
        first = True
        try:
            await response.prepare(request)
            if table is None and transform is None:
                _send_headers(request)
                watch.attach_writer(_direct_chunk_writer(request))
            while True:
                event = await watch.next_event()
                if event is None:
                    break
                if table is not None:
                    await response.write(self._table_line(watch, event, table, first))
                    first = False
                    continue
                if transform is not None:  # another view of the stored objects
                    await response.write(transform(event.line()))
                    continue
                watch.begin_write()
                try:
                    chunk = [event.line()]
                    while watch._queue and not watch.closed and watch._remaining is None:
                        more = await watch.next_event()
                        if more is None:
                            break
                        chunk.append(more.line())
                    await response.write(b"".join(chunk))
                finally:
                    watch.end_write()
            watch.attach_writer(None)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            watch.close("client went away")
            raise
        finally:
            watch.close("stream ended")
        return response

    async def _stream_single(self, request: web.Request, event: WatchEvent) -> web.StreamResponse:
        if request.method == "HEAD":
            return web.Response(status=200, headers={"Content-Type": "application/json"})
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(event.line())
        await response.write_eof()
        return response

    async def _delete_collection(self, request: web.Request, t: Target) -> web.Response:
        rt, q = t.rt, request.query
        options = await self._delete_options(request)
        items, _rv = self.store.list_refs(
            rt,
            t.namespace,
            label_selector=q.get("labelSelector"),
            field_selector=q.get("fieldSelector"),
        )
        results = []
        for obj in list(items):
            meta = obj["metadata"]
            with contextlib.suppress(StatusError):
                results.append(
                    await self.store.delete(
                        rt,
                        meta.get("namespace"),
                        meta["name"],
                        grace_period_seconds=options.get("gracePeriodSeconds"),
                        propagation_policy=options.get("propagationPolicy"),
                        dry_run=options.get("dryRun") == ["All"],
                    )
                )
        keep_kind = rt.group not in (
            "",
            "events.k8s.io",
            "coordination.k8s.io",
            "apiextensions.k8s.io",
        )
        listed = (
            results
            if keep_kind
            else [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in results]
        )
        return json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": listed,
            }
        )

    async def _pod_log(self, request: web.Request, t: Target) -> web.StreamResponse:
        pod = self.store.get_ref(t.rt, t.namespace, t.name or "")
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = request.query.get("container")
        name = t.name or ""
        if container is None:
            if len(containers) != 1:
                raise errors.bad_request(
                    f"a container name must be specified for pod {name}, choose one of: {containers}"
                )
            container = containers[0]
        elif container not in containers:
            raise errors.bad_request(f"container {container} is not valid for pod {name}")
        provider = self.store.pod_log_source
        result = (
            None
            if provider is None
            else provider(t.namespace or "", name, log_options(request.query, container))
        )
        if isinstance(result, Awaitable):
            result = await result
        if result is None:
            raise errors.bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
            )
        if isinstance(result, str):
            return web.Response(text=result, content_type="text/plain")
        if request.method == "HEAD":  # a followed log has no end; HEAD wants headers only
            closing = getattr(result, "aclose", None)
            if closing is not None:
                await closing()
            return web.Response(status=200, headers={"Content-Type": "text/plain"})
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        async for piece in result:  # an async iterator of str for follow=true
            await response.write(piece.encode())
        await response.write_eof()
        return response

    # -------------------------------------------------------------- discovery
    def _discovery(self, request: web.Request, parts: list[str]) -> web.Response:
        accept = request.headers.get("Accept", "")
        aggregated = (
            "as=APIGroupDiscoveryList" in accept and "v=v2;" in accept.replace(" ", "") + ";"
        )
        headers = {"Vary": "Accept"}
        if parts == ["api"]:
            if aggregated:
                headers["X-Varied-Accept"] = accept
                body = {
                    "kind": "APIGroupDiscoveryList",
                    "apiVersion": "apidiscovery.k8s.io/v2",
                    "metadata": {},
                    "items": [{"metadata": {}, "versions": [self._aggregated_version("", "v1")]}],
                }
                return json_response(body, headers=headers, content_type=AGGREGATED_V2)
            return json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": self.server_address}
                    ],
                },
                headers=headers,
            )
        if parts == ["apis"]:
            groups = self._groups()
            if aggregated:
                headers["X-Varied-Accept"] = accept
                items = [
                    {
                        "metadata": {"name": g},
                        "versions": [self._aggregated_version(g, v) for v in vs],
                    }
                    for g, vs in groups.items()
                ]
                body = {
                    "kind": "APIGroupDiscoveryList",
                    "apiVersion": "apidiscovery.k8s.io/v2",
                    "metadata": {},
                    "items": items,
                }
                return json_response(body, headers=headers, content_type=AGGREGATED_V2)
            return json_response(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [self._group_entry(g, vs) for g, vs in groups.items()],
                }
            )
        if parts[0] == "api":
            if parts[1] != "v1":
                raise PlainNotFound()
            return json_response(self._resource_list("", "v1"))
        groups = self._groups()
        group = parts[1]
        if group not in groups:
            raise PlainNotFound()
        if len(parts) == 2:
            return json_response(
                {"kind": "APIGroup", "apiVersion": "v1", **self._group_entry(group, groups[group])}
            )
        if parts[2] not in groups[group]:
            raise PlainNotFound()
        return json_response(self._resource_list(group, parts[2]))

    def _groups(self) -> dict[str, list[str]]:
        served = self.store.registry.group_versions()
        groups: dict[str, list[str]] = {}
        for g in REAL_GROUP_ORDER:
            groups[g] = served.get(g, ["v1"])
        for g, vs in served.items():
            groups.setdefault(g, vs)
        return groups

    @staticmethod
    def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for rt in self.store.registry.in_group_version(group, version):
            entry: dict[str, Any] = {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": list(rt.verbs),
            }
            if rt.short_names:
                entry["shortNames"] = list(rt.short_names)
            if rt.categories:
                entry["categories"] = list(rt.categories)
            if rt.storage_version_hash:
                entry["storageVersionHash"] = rt.storage_version_hash
            resources.append(entry)
            for sub in sorted(rt.subresources, key=lambda s: (s == "scale", s)):
                kind, verbs = _subresource_kind_verbs(rt, sub)
                sub_entry: dict[str, Any] = {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                }
                if sub == "scale":
                    sub_entry.update(group="autoscaling", version="v1")
                sub_entry.update(kind=kind, verbs=verbs)
                resources.append(sub_entry)
        gv = f"{group}/{version}" if group else version
        body: dict[str, Any] = {
            "kind": "APIResourceList",
            "groupVersion": gv,
            "resources": resources,
        }
        if group:
            body["apiVersion"] = "v1"
        return body

    def _aggregated_version(self, group: str, version: str) -> dict[str, Any]:
        resources = []
        for rt in self.store.registry.in_group_version(group, version):
            custom = (rt.group, rt.version, rt.plural) in self.store.custom_versions
            entry: dict[str, Any] = {
                "resource": rt.plural,
                "responseKind": {
                    "group": rt.group if custom else "",
                    "version": rt.version if custom else "",
                    "kind": rt.kind,
                },
                "scope": "Namespaced" if rt.namespaced else "Cluster",
                "singularResource": rt.singular,
                "verbs": list(rt.verbs),
            }
            if rt.short_names:
                entry["shortNames"] = list(rt.short_names)
            if rt.categories:
                entry["categories"] = list(rt.categories)
            if rt.subresources:
                subs = []
                for sub in sorted(rt.subresources, key=lambda s: (s == "scale", s)):
                    kind, verbs = _subresource_kind_verbs(rt, sub)
                    if sub == "scale":
                        response_kind = {"group": "autoscaling", "version": "v1", "kind": kind}
                    elif custom:
                        response_kind = {"group": rt.group, "version": rt.version, "kind": kind}
                    else:
                        response_kind = {"group": "", "version": "", "kind": kind}
                    subs.append({"subresource": sub, "responseKind": response_kind, "verbs": verbs})
                entry["subresources"] = subs
            resources.append(entry)
        return {"version": version, "resources": resources, "freshness": "Current"}

    def _openapi(self, parts: list[str]) -> web.Response:
        """Just enough OpenAPI v3 for kubectl to see that the server validates fields.

        kubectl checks each PATCH operation for a ``fieldValidation`` query parameter
        before it sends ``fieldValidation=Strict``; without it kubectl falls back to
        downloading full schemas. No schemas are published (kubectl then computes
        strategic merge patches from its compiled-in types, as it does for old servers).
        """
        if parts[1:2] != ["v3"]:
            raise PlainNotFound()
        groups = {"": ["v1"], **self.store.registry.group_versions()}
        paths: dict[str, Any] = {}
        if len(parts) == 2:
            for group, versions in groups.items():
                for version in versions:
                    rel = f"api/{version}" if not group else f"apis/{group}/{version}"
                    paths[rel] = {
                        "serverRelativeURL": f"/openapi/v3/{rel}?hash={self.store.resource_version}"
                    }
            return json_response({"paths": paths})
        rest = parts[2:]
        if rest[0] == "api" and len(rest) == 2:
            group, version = "", rest[1]
        elif rest[0] == "apis" and len(rest) == 3:
            group, version = rest[1], rest[2]
        else:
            raise PlainNotFound()
        if version not in groups.get(group, []):
            raise PlainNotFound()
        prefix = f"/api/{version}" if not group else f"/apis/{group}/{version}"
        for rt in self.store.registry.in_group_version(group, version):
            item = (
                f"{prefix}/namespaces/{{namespace}}/{rt.plural}/{{name}}"
                if rt.namespaced
                else f"{prefix}/{rt.plural}/{{name}}"
            )
            paths[item] = {
                "patch": {
                    "operationId": f"patch{rt.kind}",
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": {
                        "group": group,
                        "version": version,
                        "kind": rt.kind,
                    },
                    "parameters": [
                        {
                            "name": name,
                            "in": "query",
                            "schema": {"type": "string", "uniqueItems": True},
                        }
                        for name in ("dryRun", "fieldManager", "fieldValidation", "force")
                    ],
                    "responses": {"200": {"description": "OK"}},
                }
            }
        return json_response(
            {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": VERSION_INFO["gitVersion"]},
                "paths": paths,
                "components": {"schemas": {}},
            }
        )

    # ------------------------------------------------------------------ admin
    async def _admin(self, request: web.Request) -> web.Response:
        path, method = request.path.rstrip("/"), request.method
        if path == "/_sim/faults":
            if method == "GET":
                return json_response(self.faults.describe())
            if method == "DELETE":
                self.faults.clear()
                return json_response(self.faults.describe())
            if method == "POST":
                try:
                    command = json.loads(await request.read() or b"{}")
                except (ValueError, RecursionError):
                    raise errors.bad_request("fault command must be JSON") from None
                return json_response(self.faults.apply_admin(command))
        if path == "/_sim/counters":
            if method == "GET":
                return json_response(self.counters.snapshot())
            if method == "DELETE":
                self.counters.reset()
                return json_response(self.counters.snapshot())
        if path == "/_sim/requests" and method == "GET":
            limit = _int_param(request.query, "limit") or 1000
            return json_response({"requests": self.counters.requests(limit)})
        if path == "/_sim/flowcontrol" and method == "GET":
            if self.flow is None:
                return json_response({"enabled": False})
            return json_response({"enabled": True, **self.flow.describe()})
        if path == "/_sim/state" and method == "GET":
            return json_response(
                {
                    "resourceVersion": self.store.resource_version,
                    "oldestResumableVersion": self.store.oldest_resumable_version,
                    "openWatches": len(self.store.watches()),
                    "objects": {
                        f"{rt.group}/{rt.plural}".lstrip("/"): self.store.count(rt)
                        for rt in self.store.registry
                    },
                }
            )
        raise errors.resource_not_found()


#: Bytes a watch client may have unread in our send buffer before its events are queued
#: (and written with backpressure by the stream's task) instead of written at commit.
DIRECT_WRITE_LIMIT = 1 << 20


def _send_headers(request: web.Request) -> None:
    """Put the response headers on the wire now, so that body chunks can follow directly.

    aiohttp >= 3.11 holds the headers back to send them with the first body chunk; older
    versions have already sent them in ``prepare()``.
    """
    send = getattr(request.writer, "send_headers", None)
    if send is not None:
        send()


def _direct_chunk_writer(request: web.Request) -> Callable[[bytes], bool]:
    """A synchronous writer of one chunked-encoding frame per watch line."""

    def write(line: bytes) -> bool:
        transport = request.transport
        if transport is None or transport.is_closing():
            return False  # queued; the stream's task meets the closed connection
        if transport.get_write_buffer_size() > DIRECT_WRITE_LIMIT:
            return False
        transport.write(b"%x\r\n%b\r\n" % (len(line), line))
        return True

    return write


def deleted_status(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """What DELETE answers for kinds whose registry does not return the deleted object."""
    meta = obj.get("metadata", {})
    details: dict[str, Any] = {"name": meta.get("name", "")}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.plural
    details["uid"] = meta.get("uid", "")
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def log_options(query: Any, container: str) -> dict[str, Any]:
    """The ``pods/log`` query as typed options for the kubelet's log hook."""
    options: dict[str, Any] = {"container": container}
    for flag in ("follow", "previous", "timestamps"):
        options[flag] = _bool_param(query.get(flag))
    for number in ("tailLines", "sinceSeconds", "limitBytes"):
        options[number] = _int_param(query, number)
    options["sinceTime"] = query.get("sinceTime")
    return options


def _subresource_kind_verbs(rt: ResourceType, sub: str) -> tuple[str, list[str]]:
    if sub == "binding":
        return "Binding", ["create"]
    if sub == "token":  # serviceaccounts/token: TokenRequest (kubesim.auth)
        return "TokenRequest", ["create"]
    if sub == "log":
        return rt.kind, ["get"]
    if sub == "finalize":
        return rt.kind, ["update"]
    if sub == "scale":
        return "Scale", ["get", "patch", "update"]
    return rt.kind, ["get", "patch", "update"]


async def read_body(request: web.Request) -> bytes:
    """A write's body, refused with 413 above the API server's 3 MiB limit (before it is
    read when the client says its length, as the real server's limited reader does)."""
    limit = errors.MAX_REQUEST_BODY_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise errors.request_entity_too_large(limit)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:  # beyond aiohttp's own cap, chunked
        raise errors.request_entity_too_large(limit) from None
    if len(raw) > limit:
        raise errors.request_entity_too_large(limit)
    return raw


def _patch_additions(patch: Any) -> Any:
    """A merge or strategic merge patch without its deletions (nulls) and directives
    (``$patch``, ``$retainKeys``...): the fields it would put into the object."""
    if isinstance(patch, dict):
        return {
            k: _patch_additions(v)
            for k, v in patch.items()
            if v is not None and not k.startswith("$")
        }
    if isinstance(patch, list):
        return [_patch_additions(v) for v in patch]
    return patch


def _manager(request: web.Request) -> str:
    """The field manager a write is recorded under (``fieldManager``, else the User-Agent)."""
    return manager_from(request.query.get("fieldManager"), request.headers.get("User-Agent", ""))


def _objkey(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


def make_app(api: SimulatorAPI) -> web.Application:
    """An aiohttp application that sends every path to ``api``."""
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", api.handle)
    if api.flow is not None:
        app.on_response_prepare.append(add_flow_headers)
    return app


async def iterate_lines(text: str) -> AsyncIterator[str]:
    """A tiny async iterator over ``text`` (for log providers that stream)."""
    for line in text.splitlines(keepends=True):
        yield line
