"""Replay the recorded kube-apiserver requests against a fresh simulator and count matches.

    PYTHONPATH=simulator python scripts/replay_samples.py [--samples DIR] [--json] [-v]

Every entry of the recorded samples (``tests/sim/samples/``, copied from a real 1.36.2
server) that has a request and a response is sent again, after the setup it needs
(objects that existed, a stale version to send); the simulator's answer must have the
same status, content type and body, placeholders (``<uid-N>``, ``<rv>``, ``<time>``,
``<continue-N>``...) matching any value of their shape and ``managedFields`` entries
compared without their ``fieldsV1`` (the recording left it out). Discovery documents
were cut down when recorded, so only what they still list is compared. The output is
one line per scenario group ("02-pod-create 3/3") and the totals; ``-v`` prints the
first difference of every mismatch. Point PYTHONPATH at another checkout's
``simulator/`` to measure that one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from kubesim.testing import run_simulator

RUN = "g1"
NS = f"probe-{RUN}"
USER_AGENT = "conformance-probe/1.0"
SHAPES = {
    r"<uid-\d+>": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    r"<rv>": r"[0-9]+",
    r"<time>": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
    r"<ip>": r"\d+\.\d+\.\d+\.\d+",
    r"<gen(-\d+)?>": r"[bcdfghjklmnpqrstvwxz2456789]{5}",
    r"<continue-\d+>": r"[A-Za-z0-9_-]+",
    r"<server-address>": r"[^\s]+",
    r"<age>": r"\S+",
    r"<run>": RUN,
}
_PLACEHOLDER = re.compile("|".join(f"(?:{p})" for p in SHAPES))


def _pattern(recorded: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _PLACEHOLDER.finditer(recorded):
        out.append(re.escape(recorded[pos : m.start()]))
        out.append(next(s for p, s in SHAPES.items() if re.fullmatch(p, m.group(0))))
        pos = m.end()
    out.append(re.escape(recorded[pos:]))
    return re.compile("^" + "".join(out) + "$", re.S)


def difference(actual: Any, recorded: Any, where: str = "") -> str | None:
    """None when ``actual`` matches ``recorded``, else where and how they first differ."""
    if isinstance(recorded, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {actual!r:.80}"
        if "fieldsType" in recorded and "fieldsV1" not in recorded:
            actual = {k: v for k, v in actual.items() if k != "fieldsV1"}
        if sorted(actual) != sorted(recorded):
            return f"{where}: keys {sorted(actual)} != {sorted(recorded)}"
        for key, value in recorded.items():
            found = difference(actual[key], value, f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(recorded, list):
        if not isinstance(actual, list) or len(actual) != len(recorded):
            return f"{where}: {actual!r:.120} != {recorded!r:.120}"
        for i, (a, r) in enumerate(zip(actual, recorded, strict=True)):
            found = difference(a, r, f"{where}[{i}]")
            if found:
                return found
        return None
    if isinstance(recorded, str) and "<" in recorded:
        if isinstance(actual, str) and _pattern(recorded).match(actual):
            return None
        return f"{where}: {actual!r:.120} !~ {recorded!r:.120}"
    return None if actual == recorded else f"{where}: {actual!r:.120} != {recorded!r:.120}"


def _key(item: dict[str, Any]) -> Any:
    return (
        item.get("name")
        or item.get("resource")
        or item.get("groupVersion")
        or item.get("version")
        or (item.get("metadata") or {}).get("name")
    )


def _named(items: list[Any]) -> dict[str, Any]:
    out = {}
    for item in items:
        if isinstance(item, dict):
            out[str(_key(item))] = item
    return out


def discovery_difference(actual: Any, recorded: Any, where: str = "") -> str | None:
    """Discovery documents were cut down when recorded: every recorded item must be in the
    answer and equal; items the recording dropped are not compared."""
    if recorded == []:  # a list the recording emptied (subresources a spawner does not use)
        return None if actual is None or isinstance(actual, list) else f"{where}: not a list"
    if isinstance(recorded, list) and recorded and all(isinstance(r, str) for r in recorded):
        names = [
            (a.get("name") or (a.get("metadata") or {}).get("name")) if isinstance(a, dict) else a
            for a in actual or []
        ]
        missing = [r for r in recorded if r not in names]
        return f"{where}: missing {missing}" if missing else None
    if isinstance(recorded, list) and recorded and all(isinstance(r, dict) for r in recorded):
        if not isinstance(actual, list):
            return f"{where}: expected a list"
        have = _named(actual)
        if any(not _key(r) for r in recorded) and len(actual) == len(recorded):
            for i, (a, r) in enumerate(zip(actual, recorded, strict=True)):
                found = discovery_difference(a, r, f"{where}[{i}]")
                if found:
                    return found
            return None
        if len(have) != len(actual) or any(not _key(r) for r in recorded):
            return difference(actual, recorded, where)
        for name, item in _named(recorded).items():
            if name not in have:
                return f"{where}: {name} missing"
            found = discovery_difference(have[name], item, f"{where}[{name}]")
            if found:
                return found
        return None
    if isinstance(recorded, dict):
        # "example_..." entries are the recorder's notes, not part of the answer
        recorded = {k: v for k, v in recorded.items() if not k.startswith("example_")}
        if isinstance(actual, dict):
            recorded = {k: v for k, v in recorded.items() if v != [] or k in actual}
        if not isinstance(actual, dict) or sorted(actual) != sorted(recorded):
            return difference(actual, recorded, where)
        for key, value in recorded.items():
            found = discovery_difference(actual[key], value, f"{where}.{key}")
            if found:
                return found
        return None
    return difference(actual, recorded, where)


def concrete(value: Any, tokens: dict[str, str]) -> Any:
    if isinstance(value, str):
        value = value.replace("<run>", RUN)
        for placeholder, token in tokens.items():
            value = value.replace(placeholder, token)
        return value
    if isinstance(value, dict):
        return {k: concrete(v, tokens) for k, v in value.items()}
    if isinstance(value, list):
        return [concrete(v, tokens) for v in value]
    return value


class Replayer:
    def __init__(self, sim: Any, http: aiohttp.ClientSession, verbose: bool) -> None:
        self.sim = sim
        self.http = http
        self.verbose = verbose
        self.tokens: dict[str, str] = {}
        self.results: dict[str, list[bool]] = defaultdict(list)

    async def send(
        self, method: str, path: str, body: Any = None, *, text: str | None = None,
        ctype: str | None = "application/json", accept: str | None = None,
    ) -> tuple[int, str, Any]:
        headers = {"User-Agent": USER_AGENT}
        if ctype:
            headers["Content-Type"] = ctype
        if accept:
            headers["Accept"] = accept
        data = text if text is not None else (None if body is None else json.dumps(body))
        async with self.http.request(method, self.sim.url + path, data=data, headers=headers) as r:
            raw = await r.read()
            ctype_got = r.headers.get("Content-Type", "")
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode("utf-8", "replace")
            return r.status, ctype_got, parsed

    async def check(
        self, group: str, name: str, entry: dict[str, Any], *, discovery: bool = False
    ) -> Any:
        request = concrete(entry["request"], self.tokens)
        status, ctype, body = await self.send(
            request["method"], request["path"], request.get("body"),
            text=request.get("body_text"), ctype=request.get("content_type"),
            accept=request.get("accept"),
        )
        response = entry["response"]
        recorded_ctype = response.get("content_type", "")
        problem = None
        if status != response["status"]:
            problem = f"status {status} != {response['status']}"
        elif ctype.split(";")[0] != recorded_ctype.split(";")[0] or (
            "as=" in recorded_ctype and ctype != recorded_ctype
        ):
            problem = f"content type {ctype!r} != {recorded_ctype!r}"
        elif "body" in response:
            compare = discovery_difference if discovery else difference
            problem = compare(body, response["body"], name)
        elif "body_text" in response and body != response["body_text"]:
            problem = f"body {body!r:.80} != {response['body_text']!r:.80}"
        self.record(group, name, problem)
        if isinstance(body, dict):
            token = (body.get("metadata") or {}).get("continue")
            recorded_token = ((response.get("body") or {}).get("metadata") or {}).get("continue")
            if token and recorded_token:
                self.tokens[recorded_token] = token
        return body

    def record(self, group: str, name: str, problem: str | None) -> None:
        self.results[group].append(problem is None)
        if problem and self.verbose:
            print(f"  MISMATCH {group} {name}: {problem}", file=sys.stderr)


async def replay(samples: Path, verbose: bool) -> dict[str, list[bool]]:
    def load(file: str) -> dict[str, Any]:
        with open(samples / file) as f:
            return dict(json.load(f))

    async with run_simulator() as sim, aiohttp.ClientSession() as http:
        rp = Replayer(sim, http, verbose)
        await rp.send("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})

        def group_of(entry: dict[str, Any]) -> str:
            return str(entry.get("from", "?")).split("/")[0]

        for key, entry in load("discovery.json").items():
            if isinstance(entry, dict) and "request" in entry:
                await rp.check(group_of(entry), key, entry, discovery=True)

        for file in ("pod-defaulted.json", "service-defaulted.json", "pvc-defaulted.json",
                     "secret-defaulted.json"):
            for key, entry in load(file).items():
                if isinstance(entry, dict) and "request" in entry:
                    await rp.check(group_of(entry), key, entry)

        errors = load("status-errors.json")
        setups: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {}

        async def duplicate(entry: dict[str, Any]) -> None:
            request = concrete(entry["request"], {})
            await rp.send("POST", request["path"], request["body"])

        async def stale(entry: dict[str, Any]) -> None:
            body = concrete(entry["request"]["body"], {})
            path = concrete(entry["request"]["path"], {})
            _, _, made = await rp.send("POST", path.rsplit("/", 1)[0],
                                       {"metadata": {"name": body["metadata"]["name"]},
                                        "data": {"k": "v"}})
            await rp.send("PATCH", path, {"data": {"k": "newer"}},
                          ctype="application/merge-patch+json")
            entry["request"]["body"]["metadata"]["resourceVersion"] = made["metadata"]["resourceVersion"]
            entry["request"]["body"]["metadata"]["uid"] = made["metadata"]["uid"]

        async def immutable(entry: dict[str, Any]) -> None:
            image = "registry.example/probe/notebook:1.0"
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "upd-pod"},
                   "spec": {"containers": [{"name": "main", "image": image},
                                           {"name": "side", "image": image}],
                            "schedulingGates": [{"name": "example.com/probe-hold"}]}}
            _, _, made = await rp.send("POST", f"/api/v1/namespaces/{NS}/pods", pod)
            made["spec"]["containers"].append({"name": "extra", "image": image})
            entry["request"] = dict(entry["request"], body=made)

        async def configmap_pat(entry: dict[str, Any]) -> None:
            await rp.send("POST", f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": "pat"}})

        setups["409_already_exists"] = duplicate
        setups["409_conflict_stale_resource_version"] = stale
        setups["422_invalid_immutable_pod_field"] = immutable
        setups["415_patch_with_application_json"] = configmap_pat
        for key, entry in errors.items():
            if isinstance(entry, dict) and "request" in entry:
                if key in setups:
                    await setups[key](entry)
                await rp.check(group_of(entry), key, entry)

        pages = load("list-pagination.json")
        # the recorded namespace held only the listed objects of these kinds
        await rp.send("DELETE", f"/api/v1/namespaces/{NS}/secrets")
        await rp.send("DELETE", f"/api/v1/namespaces/{NS}/configmaps?labelSelector=page")
        for i in range(5):
            await rp.send("POST", f"/api/v1/namespaces/{NS}/secrets",
                          {"metadata": {"name": f"page-{i}"},
                           "data": {"i": __import__("base64").b64encode(str(i).encode()).decode()}})
        for i in range(3):
            await rp.send("POST", f"/api/v1/namespaces/{NS}/configmaps",
                          {"metadata": {"name": f"page-{i}", "labels": {"page": "yes"}},
                           "data": {"i": str(i)}})
        for key in ("with_label_selector_page_1", "no_selector_page_1", "no_selector_page_2",
                    "no_selector_last_page"):
            await rp.check(group_of(pages[key]), key, pages[key])

        await replay_watches(rp, load("watch-events.json"))
        return rp.results


async def replay_watches(rp: Replayer, recorded: dict[str, Any]) -> None:
    """The watch samples: event shapes of a label-selected ConfigMap's life, the
    initial-events-end BOOKMARK, and the ERROR of a watch from a compacted version."""
    group = "watch-events (recorded without a group)"
    base = f"/api/v1/namespaces/{NS}/configmaps"
    rv = str(rp.sim.store.resource_version)
    lines: list[dict[str, Any]] = []
    async with rp.http.get(rp.sim.url + f"{base}?watch=1&labelSelector=w%3Dlife&resourceVersion={rv}",
                           headers={"User-Agent": USER_AGENT}) as resp:
        await rp.send("POST", base, {"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "w-life", "labels": {"w": "life"}},
                                     "data": {"k": "v"}})
        await rp.send("PATCH", f"{base}/w-life", {"metadata": {"labels": {"added": "yes"}}},
                      ctype="application/merge-patch+json")
        await rp.send("PATCH", f"{base}/w-life", {"metadata": {"labels": {"added": None}},
                                                  "data": {"k": "v2"}},
                      ctype="application/merge-patch+json")
        await rp.send("DELETE", f"{base}/w-life")
        while len(lines) < 4:
            lines.append(json.loads(await asyncio.wait_for(resp.content.readline(), 10)))
    for kind, line in (("ADDED", lines[0]), ("MODIFIED", lines[1]), ("DELETED", lines[3])):
        rp.record(group, kind, difference(line, recorded[kind], kind))
    for key, path, wanted in (
        ("BOOKMARK_initial_events_end", recorded["BOOKMARK_initial_events_end"]["request"]["path"],
         recorded["BOOKMARK_initial_events_end"]["event"]),
        ("ERROR_expired", recorded["ERROR_expired"]["request"]["path"], recorded["ERROR_expired"]["event"]),
    ):
        got = None
        async with rp.http.get(rp.sim.url + concrete(path, {}) + "&timeoutSeconds=5",
                               headers={"User-Agent": USER_AGENT}) as resp:
            async for raw in resp.content:
                got = json.loads(raw)
                if got["type"] in ("BOOKMARK", "ERROR"):
                    break
        rp.record(group, key, difference(got, wanted, key))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path,
                        default=Path(__file__).resolve().parent.parent / "tests" / "sim" / "samples")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every mismatch")
    args = parser.parse_args()
    results = asyncio.run(replay(args.samples, args.verbose))
    groups = sorted(results)
    matched_groups = [g for g in groups if all(results[g])]
    requests = sum(len(v) for v in results.values())
    matched = sum(sum(v) for v in results.values())
    if args.json:
        print(json.dumps({
            "groups": {g: {"matched": sum(results[g]), "total": len(results[g])} for g in groups},
            "groups_matching": len(matched_groups), "groups_total": len(groups),
            "requests_matching": matched, "requests_total": requests,
        }, indent=2))
    else:
        for g in groups:
            print(f"{g:32} {sum(results[g])}/{len(results[g])}")
        print(f"groups matching: {len(matched_groups)}/{len(groups)}; "
              f"requests matching: {matched}/{requests}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
