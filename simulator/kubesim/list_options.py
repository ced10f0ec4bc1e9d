"""ListOptions checks and continue tokens, worded as the real API server words them.

The real handler validates a list's or watch's options before it touches storage; a
misuse (``resourceVersionMatch`` without a ``resourceVersion``, ``sendInitialEvents`` on a
plain list...) is a 422 ``Invalid`` for kind ``ListOptions`` in group ``meta.k8s.io``
with one cause per problem. Continue tokens are base64 (URL alphabet, unpadded) JSON
``{"v", "rv", "start"}``; a token the server cannot read is a 400 whose message carries
the decoder's own complaint.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import StatusError, bad_request
from .field_errors import forbidden, invalid_status, not_supported

ObjKey = tuple[str, str]

#: the continue token version meaning "the newest state" (what an expired token's
#: replacement carries: the client may go on, inconsistently, from where it stopped)
LATEST = -1

_INVALID_START_RV = (
    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
)


def validate_list_options(query: Any, *, watch: bool) -> None:
    """422 when the options contradict each other, as ``ValidateListOptions`` decides."""
    match = query.get("resourceVersionMatch") or ""
    rv = query.get("resourceVersion") or ""
    token = query.get("continue") or ""
    send_initial = query.get("sendInitialEvents")
    causes = []
    if watch:
        if send_initial is not None and match != "NotOlderThan":
            causes.append(
                forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )
            )
        if match:
            if send_initial is None:
                causes.append(
                    forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                    )
                )
            if match != "NotOlderThan":
                causes.append(not_supported("resourceVersionMatch", match, ["NotOlderThan"]))
            if token:
                causes.append(
                    forbidden(
                        "resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided"
                    )
                )
    else:
        if match:
            if not rv:
                causes.append(
                    forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    )
                )
            if token:
                causes.append(
                    forbidden(
                        "resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided"
                    )
                )
            if match not in ("Exact", "NotOlderThan"):
                causes.append(
                    not_supported("resourceVersionMatch", match, ["Exact", "NotOlderThan", ""])
                )
            if match == "Exact" and rv == "0":
                causes.append(
                    forbidden(
                        "resourceVersionMatch",
                        'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                    )
                )
        if send_initial is not None:
            causes.append(forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"))
    if causes:
        raise StatusError(invalid_status("ListOptions", "", causes, "meta.k8s.io"))


def encode_continue(rv: int, last_key: ObjKey) -> str:
    """An opaque token shaped like the real one: base64 of {v, rv, start}."""
    raw = json.dumps(
        {"v": "meta.k8s.io/v1", "rv": rv, "start": f"{last_key[0]}/{last_key[1]}\x00"},
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, ObjKey]:
    """(list resourceVersion or ``LATEST``, last key served); 400 with the real wording."""

    def refuse(detail: str = "") -> StatusError:
        return bad_request(f"invalid continue token: {_INVALID_START_RV}{detail}")

    try:
        if "=" in token:  # the real tokens use the unpadded alphabet
            raise binascii.Error(f"illegal base64 data at input byte {token.index('=')}")
        bad = next((i for i, c in enumerate(token) if not (c.isalnum() or c in "-_")), None)
        if bad is not None or len(token) % 4 == 1:
            where = bad if bad is not None else len(token) - 1
            raise binascii.Error(f"illegal base64 data at input byte {where}")
        data = base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode())
    except (binascii.Error, ValueError) as exc:
        raise refuse(f": {exc}") from None
    try:
        parsed = json.loads(data)
    except ValueError:
        text = data.decode("utf-8", "replace")
        first = text.lstrip()[:1] or "EOF"
        raise refuse(f": invalid character '{first}' looking for beginning of value") from None
    if not isinstance(parsed, dict):
        raise refuse()
    version = parsed.get("v")
    if version != "meta.k8s.io/v1":
        raise bad_request(
            "invalid continue token: continue key is not valid: server does not recognize this "
            f"encoded version {version if isinstance(version, str) else ''}".rstrip()
        )
    rv = parsed.get("rv")
    if not isinstance(rv, int) or isinstance(rv, bool) or rv == 0 or rv < LATEST:
        raise refuse()
    start = parsed.get("start")
    if not isinstance(start, str) or not start:
        raise bad_request(
            "invalid continue token: continue key is not valid: encoded start key empty "
            "(version meta.k8s.io/v1)"
        )
    ns, _, name = start.rstrip("\x00").partition("/")
    return rv, (ns, name)
