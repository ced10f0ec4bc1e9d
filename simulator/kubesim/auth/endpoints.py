"""The create-only APIs of authentication and authorization, answered without storing anything.

SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview and
SelfSubjectRulesReview ask the same authorizer that guards every request (so
``kubectl auth can-i`` tells the truth); TokenReview and SelfSubjectReview ask the
authenticator; ``serviceaccounts/NAME/token`` (TokenRequest) issues a bound token.
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from .. import errors
from ..errors import StatusError
from ..protobuf import PROTOBUF_CONTENT_TYPE, decode_object
from ..store import dumps, now_rfc3339
from .requestinfo import Attributes
from .resources import AUTHN_GROUP, AUTHZ_GROUP
from .tokens import API_AUDIENCES
from .users import UserInfo

if TYPE_CHECKING:
    from . import Auth

MIN_EXPIRATION = 600
MAX_EXPIRATION = 1 << 32
DEFAULT_EXPIRATION = 3600


def _created(body: dict[str, Any]) -> web.Response:
    return web.Response(
        body=dumps(body), status=201, content_type=None, headers={"Content-Type": "application/json"}
    )


def _invalid(kind: str, group: str, name: str, causes: list[dict[str, str]]) -> StatusError:
    """422 with the group-qualified kind in the message, as the real server words it."""
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: dict[str, Any] = {"name": name, "group": group, "kind": kind, "causes": causes}
    return StatusError(
        errors.status_body(422, "Invalid", f'{kind}.{group} "{name}" is invalid: {joined}', details)
    )


async def read_body(request: web.Request, kind: str, api_version: str) -> dict[str, Any]:
    """The request body as an object of ``kind``; the real 400s for what is not one."""
    raw = await request.read()
    if request.content_type == PROTOBUF_CONTENT_TYPE:
        return decode_object(raw, kind)
    prefix = f"the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; "
    try:
        if request.content_type == "application/yaml":
            value = yaml.safe_load(raw)
        else:
            value = json.loads(raw)
    except (ValueError, yaml.YAMLError):
        text = raw.decode("utf-8", "replace")
        excerpt = text[:30] + " ..." if len(text) > 30 else text
        raise errors.bad_request(f"{prefix}json parse error: unexpected end of JSON input ({excerpt})") from None
    if value is None:
        raise errors.bad_request("Object 'Kind' is missing in 'null'")
    if not isinstance(value, dict):
        raise errors.bad_request(f"{prefix}json parse error: json: cannot unmarshal into Go value")
    got_kind, got_version = value.get("kind"), value.get("apiVersion")
    if got_kind and got_kind != kind:
        version = str(got_version or api_version).rsplit("/", 1)[-1]
        raise errors.bad_request(
            f'{got_kind} in version "{version}" cannot be handled as a {kind}: converting '
            f"({version}.{got_kind}) to ({api_version.split('/')[0]}.{kind}): unknown conversion"
        )
    if got_version and got_version != api_version:
        raise errors.bad_request(
            f"the API version in the data ({got_version}) does not match the expected API "
            f"version ({api_version})"
        )
    for key in ("spec", "metadata"):
        if value.get(key) is not None and not isinstance(value[key], dict):
            raise errors.bad_request(
                f'{kind} in version "v1" cannot be handled as a {kind}: json: cannot unmarshal '
                f"{type(value[key]).__name__} into Go struct field {kind}.{key}"
            )
    return value


def _echo(body: dict[str, Any], kind: str, group: str) -> dict[str, Any]:
    meta = dict(body.get("metadata") or {})
    meta.setdefault("creationTimestamp", None)
    return {"kind": kind, "apiVersion": f"{group}/v1", "metadata": meta, "spec": body.get("spec") or {}}


def _attributes(spec: dict[str, Any], namespace_override: str | None = None) -> Attributes:
    resource = spec.get("resourceAttributes")
    if isinstance(resource, dict):
        return Attributes(
            verb=str(resource.get("verb", "")),
            resource_request=True,
            api_group=str(resource.get("group", "")),
            api_version=str(resource.get("version", "")),
            namespace=str(
                namespace_override if namespace_override is not None else resource.get("namespace", "")
            ),
            resource=str(resource.get("resource", "")),
            subresource=str(resource.get("subresource", "")),
            name=str(resource.get("name", "")),
        )
    other = spec.get("nonResourceAttributes") or {}
    return Attributes(
        verb=str(other.get("verb", "")), resource_request=False, path=str(other.get("path", ""))
    )


def _one_of_attributes(kind: str, spec: dict[str, Any]) -> None:
    has_resource = spec.get("resourceAttributes") is not None
    has_other = spec.get("nonResourceAttributes") is not None
    if has_resource == has_other:
        if has_resource:
            cause = {
                "reason": "FieldValueInvalid",
                "message": "Invalid value: \"null\": cannot be specified in combination with resourceAttributes",
                "field": "spec.nonResourceAttributes",
            }
        else:
            cause = {
                "reason": "FieldValueRequired",
                "message": "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
                "field": "spec.resourceAttributes",
            }
        raise _invalid(kind, AUTHZ_GROUP, "", [cause])


def _access_status(auth: Auth, user: UserInfo, attrs: Attributes) -> dict[str, Any]:
    decision = auth.decide(user, attrs)
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return status


async def serve(
    auth: Auth, request: web.Request, group: str, plural: str, namespace: str | None,
    name: str | None, subresource: str | None, verb: str,
) -> web.StreamResponse | None:
    """The response for an auth API request, or None when the request is not one."""
    if group == "" and plural == "serviceaccounts" and subresource == "token":
        if verb != "create":
            raise errors.method_not_allowed(verb, "serviceaccounts/token")
        return await _token_request(auth, request, namespace or "", name or "")
    if group not in (AUTHZ_GROUP, AUTHN_GROUP):
        return None
    if verb != "create":
        raise errors.method_not_allowed(verb, plural)
    user = auth.user_of(request)
    if group == AUTHN_GROUP:
        if plural == "selfsubjectreviews":
            body = await read_body(request, "SelfSubjectReview", f"{AUTHN_GROUP}/v1")
            out: dict[str, Any] = {
                "kind": "SelfSubjectReview",
                "apiVersion": f"{AUTHN_GROUP}/v1",
                "metadata": {**(body.get("metadata") or {}), "creationTimestamp": None},
                "status": {"userInfo": user.to_api()},
            }
            return _created(out)
        if plural == "tokenreviews":
            body = await read_body(request, "TokenReview", f"{AUTHN_GROUP}/v1")
            spec = body.get("spec") or {}
            audiences = tuple(spec.get("audiences") or API_AUDIENCES)
            out = _echo(body, "TokenReview", AUTHN_GROUP)
            found = auth.user_for_token(str(spec.get("token", "")), audiences)
            status: dict[str, Any] = {"user": {}}
            if found is None:
                status["error"] = "[invalid bearer token, token lookup failed]"
            else:
                status = {"authenticated": True, "user": found.to_api(), "audiences": list(audiences)}
            out["status"] = status
            return _created(out)
        return None
    if plural == "selfsubjectaccessreviews":
        body = await read_body(request, "SelfSubjectAccessReview", f"{AUTHZ_GROUP}/v1")
        spec = body.get("spec") or {}
        _one_of_attributes("SelfSubjectAccessReview", spec)
        out = _echo(body, "SelfSubjectAccessReview", AUTHZ_GROUP)
        out["status"] = _access_status(auth, user, _attributes(spec))
        return _created(out)
    if plural == "subjectaccessreviews":
        body = await read_body(request, "SubjectAccessReview", f"{AUTHZ_GROUP}/v1")
        spec = body.get("spec") or {}
        _one_of_attributes("SubjectAccessReview", spec)
        if not spec.get("user") and not spec.get("groups"):
            raise _invalid(
                "SubjectAccessReview",
                AUTHZ_GROUP,
                "",
                [
                    {
                        "reason": "FieldValueInvalid",
                        "message": 'Invalid value: "": at least one of user or group must be specified',
                        "field": "spec.user",
                    }
                ],
            )
        subject = _subject(spec)
        out = _echo(body, "SubjectAccessReview", AUTHZ_GROUP)
        out["status"] = _access_status(auth, subject, _attributes(spec))
        return _created(out)
    if plural == "localsubjectaccessreviews":
        body = await read_body(request, "LocalSubjectAccessReview", f"{AUTHZ_GROUP}/v1")
        spec = body.get("spec") or {}
        meta = body.get("metadata") or {}
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        _one_of_attributes("LocalSubjectAccessReview", spec)
        causes = []
        if spec.get("nonResourceAttributes") is not None:
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": "Invalid value: \"\": disallowed on this kind of request",
                    "field": "spec.nonResourceAttributes",
                }
            )
        elif (spec.get("resourceAttributes") or {}).get("namespace", "") != namespace:
            given = (spec.get("resourceAttributes") or {}).get("namespace", "")
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": f'Invalid value: "{given}": must match metadata.namespace',
                    "field": "spec.resourceAttributes.namespace",
                }
            )
        if not spec.get("user") and not spec.get("groups"):
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": 'Invalid value: "": at least one of user or group must be specified',
                    "field": "spec.user",
                }
            )
        if causes:
            raise _invalid("LocalSubjectAccessReview", AUTHZ_GROUP, "", causes)
        out = _echo(body, "LocalSubjectAccessReview", AUTHZ_GROUP)
        out["metadata"] = {**out["metadata"], "namespace": namespace}
        out["status"] = _access_status(auth, _subject(spec), _attributes(spec, namespace))
        return _created(out)
    if plural == "selfsubjectrulesreviews":
        body = await read_body(request, "SelfSubjectRulesReview", f"{AUTHZ_GROUP}/v1")
        spec = body.get("spec") or {}
        ns = str(spec.get("namespace", ""))
        resource, nonresource, problems = auth.rules_for(user, ns)
        out = _echo(body, "SelfSubjectRulesReview", AUTHZ_GROUP)
        out["status"] = {
            "resourceRules": resource,
            "nonResourceRules": nonresource,
            "incomplete": bool(problems),
        }
        if problems:
            out["status"]["evaluationError"] = (
                problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
            )
        return _created(out)
    return None


def _subject(spec: dict[str, Any]) -> UserInfo:
    extra = spec.get("extra") or {}
    return UserInfo(
        name=str(spec.get("user", "")),
        uid=str(spec.get("uid", "")),
        groups=tuple(str(g) for g in spec.get("groups") or ()),
        extra={str(k): tuple(v or ()) for k, v in extra.items()} if isinstance(extra, dict) else {},
    )


async def _token_request(
    auth: Auth, request: web.Request, namespace: str, name: str
) -> web.StreamResponse:
    store = auth.store
    accounts = store.registry.lookup("serviceaccounts")
    account = store.get_ref(accounts, namespace, name)  # 404 serviceaccounts "x" not found
    body = await read_body(request, "TokenRequest", f"{AUTHN_GROUP}/v1")
    spec = dict(body.get("spec") or {})
    audiences = tuple(str(a) for a in spec.get("audiences") or ()) or API_AUDIENCES
    expiration = spec.get("expirationSeconds")
    if expiration is None:
        expiration = DEFAULT_EXPIRATION
    causes = []
    if not isinstance(expiration, int) or isinstance(expiration, bool):
        raise errors.bad_request(
            'TokenRequest in version "v1" cannot be handled as a TokenRequest: json: cannot '
            "unmarshal into Go struct field TokenRequestSpec.spec.expirationSeconds of type int64"
        )
    if expiration < MIN_EXPIRATION:
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "message": f"Invalid value: {expiration}: may not specify a duration less than 10 minutes",
                "field": "spec.expirationSeconds",
            }
        )
    elif expiration > MAX_EXPIRATION:
        causes.append(
            {
                "reason": "FieldValueTooLong",
                "message": f"Invalid value: {expiration}: may not specify a duration larger than 2^32 seconds",
                "field": "spec.expirationSeconds",
            }
        )
    if causes:
        raise _invalid("TokenRequest", AUTHN_GROUP, name, causes)
    bound = None
    ref = spec.get("boundObjectRef")
    if isinstance(ref, dict) and ref:
        bound = _bound_object(auth, namespace, ref)
    sa_uid = account["metadata"].get("uid", "")
    token, expires = auth.signer.issue_bound(
        namespace, name, sa_uid, audiences=audiences, expiration_seconds=expiration, bound=bound
    )
    out_spec: dict[str, Any] = {
        "audiences": list(audiences),
        "expirationSeconds": expiration,
        "boundObjectRef": ref if bound else None,
    }
    stamp = datetime.datetime.fromtimestamp(expires, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _created(
        {
            "kind": "TokenRequest",
            "apiVersion": f"{AUTHN_GROUP}/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": now_rfc3339()},
            "spec": out_spec,
            "status": {"token": token, "expirationTimestamp": stamp},
        }
    )


_BOUND_KINDS = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}


def _bound_object(auth: Auth, namespace: str, ref: dict[str, Any]) -> dict[str, str]:
    kind, ref_name = str(ref.get("kind", "")), str(ref.get("name", ""))
    if kind not in _BOUND_KINDS:
        raise _invalid(
            "TokenRequest",
            AUTHN_GROUP,
            "",
            [
                {
                    "reason": "FieldValueNotSupported",
                    "message": f'Unsupported value: "{kind}": supported values: "Node", "Pod", "Secret"',
                    "field": "spec.boundObjectRef.kind",
                }
            ],
        )
    rt = auth.store.registry.lookup(_BOUND_KINDS[kind])
    try:
        obj = auth.store.get_ref(rt, namespace, ref_name)
    except StatusError as exc:
        raise errors.bad_request(
            f'cannot bind token for serviceaccount to object: {exc.status.get("message", "")}'
        ) from None
    uid = obj["metadata"].get("uid", "")
    if ref.get("uid") and ref["uid"] != uid:
        raise errors.bad_request(
            f'the UID in the bound object reference ({ref["uid"]}) does not match the UID in '
            f"record. The object might have been deleted and then recreated"
        )
    return {"kind": kind, "name": ref_name, "uid": uid}
