"""What happens to a pod: timings of each phase and the failure to act out.

A scenario is chosen per pod, first match wins:

1. the pod annotation ``sim.async-kubespawner/scenario`` (a spec, see below),
2. the first image rule whose glob matches the pod's first container image,
3. the cluster's default scenario.

A *spec* is a comma-separated list: an optional preset name first, then ``key=value``
overrides, e.g. ``crash,exit-after=5,exit-code=3`` or ``pull=2-8,ready-after=1``.
Durations are cluster seconds (see :mod:`.clock`): ``2``, ``2.5s``, ``500ms``, or a range
``1-3`` drawn uniformly per pod from a seeded generator, so a benchmark can spread
readiness out and still replay the same run.
"""

from __future__ import annotations

import fnmatch
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

SCENARIO_ANNOTATION = "sim.async-kubespawner/scenario"


class ScenarioError(ValueError):
    """A scenario spec that cannot be understood."""


_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


@dataclass(frozen=True)
class Duration:
    """A fixed span (low == high) or a uniform range of cluster seconds."""

    low: float
    high: float

    @classmethod
    def parse(cls, value: Any, where: str = "duration") -> Duration:
        if isinstance(value, Duration):
            return value
        if isinstance(value, bool):
            raise ScenarioError(f"{where}: {value!r} is not a duration")
        if isinstance(value, int | float):
            if value < 0:
                raise ScenarioError(f"{where}: durations cannot be negative, got {value}")
            return cls(float(value), float(value))
        if isinstance(value, (list, tuple)) and len(value) == 2:
            low, high = cls.parse(value[0], where).low, cls.parse(value[1], where).low
        elif isinstance(value, str):
            parts = re.split(r"\s*(?:\.\.|(?<=[0-9sm])-)\s*", value.strip())
            if len(parts) > 2 or not parts[0]:
                raise ScenarioError(
                    f"{where}: {value!r} is not a duration; use e.g. 2, 2.5s, "
                    "500ms, or a range like 1-3"
                )
            low = cls._seconds(parts[0], where, value)
            high = cls._seconds(parts[-1], where, value)
        else:
            raise ScenarioError(f"{where}: {value!r} is not a duration")
        if high < low:
            raise ScenarioError(f"{where}: range {value!r} ends before it starts")
        return cls(low, high)

    @staticmethod
    def _seconds(text: str, where: str, whole: str) -> float:
        match = _DURATION_RE.match(text)
        if match is None:
            raise ScenarioError(
                f"{where}: {whole!r} is not a duration; use e.g. 2, 2.5s, 500ms, "
                "or a range like 1-3"
            )
        return float(match[1]) * _UNITS[match[2]]

    def pick(self, rng: random.Random) -> float:
        return self.low if self.low == self.high else rng.uniform(self.low, self.high)

    def __str__(self) -> str:
        return f"{self.low:g}" if self.low == self.high else f"{self.low:g}-{self.high:g}"


_S_0_0 = Duration(0.0, 0.0)
_S_0_1 = Duration(0.1, 0.1)
_S_0_2 = Duration(0.2, 0.2)
_S_0_3 = Duration(0.3, 0.3)
_S_0_5 = Duration(0.5, 0.5)
_S_1_0 = Duration(1.0, 1.0)


@dataclass(frozen=True)
class Scenario:
    """Everything the scheduler and kubelet need to act out one pod's life."""

    name: str = "ready"
    # scheduling
    schedule_delay: Duration = _S_0_0
    unschedulable: bool = False
    unschedulable_reason: str = "Insufficient cpu"
    # node side, in order
    sandbox_delay: Duration = _S_0_2  # ContainerCreating until the pod IP exists
    image_present: bool = False  # "already present on machine" instead of a pull
    pull: Duration = _S_1_0
    image_size: int = 512 * 1024 * 1024
    pull_fails: bool = False
    create: Duration = _S_0_1  # Created → Started
    ready_after: Duration = _S_0_5  # Started → Ready (without process mode)
    never_ready: bool = False
    # probes the container declares (simulated mode): the startup probe passes from this
    # long after the start (None: never); the liveness probe passes this long, then fails
    startup_after: Duration | None = _S_0_0
    live_for: Duration | None = None
    # failures while running
    exit_after: Duration | None = None  # the main container exits after this long
    exit_code: int = 1
    oom_after: Duration | None = None
    evict_after: Duration | None = None
    # what the main container prints when it starts ("\n" separates lines): its log, and
    # with terminationMessagePolicy FallbackToLogsOnError the message of a failed exit
    output: str = ""
    # termination
    termination: Duration = _S_0_5  # SIGTERM until the container has exited
    init_duration: Duration = _S_0_3  # each init container runs this long, exits 0

    def resolved(self, seed: str) -> ResolvedScenario:
        """Draw each ranged timing once for one pod (seeded by cluster seed + pod uid)."""
        return ResolvedScenario(self, random.Random(seed))


class ResolvedScenario:
    """A scenario with its random draws fixed for one pod; draws stay stable per field."""

    def __init__(self, scenario: Scenario, rng: random.Random) -> None:
        self.scenario = scenario
        self._seed = rng.random()
        self._cache: dict[str, float] = {}

    def seconds(self, field_name: str) -> float:
        if field_name not in self._cache:
            value = getattr(self.scenario, field_name)
            if value is None:
                self._cache[field_name] = 0.0
            elif value.low == value.high:
                # a fixed span draws nothing: no generator to seed (a string seed is
                # hashed with SHA-512, a cost paid per pod and field)
                self._cache[field_name] = value.low
            else:
                self._cache[field_name] = value.pick(random.Random(f"{self._seed}/{field_name}"))
        return self._cache[field_name]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.scenario, name)


PRESETS: dict[str, dict[str, Any]] = {
    "ready": {},
    "instant": {
        "sandbox_delay": 0,
        "image_present": True,
        "create": 0,
        "ready_after": 0,
        "termination": 0,
        "init_duration": 0,
    },
    "slow-pull": {"pull": 30},
    "random": {"pull": "1-5", "ready_after": "0.5-3"},
    "image-pull-failure": {"pull_fails": True, "pull": 0.5},
    "unschedulable": {"unschedulable": True},
    "crash": {"exit_after": 2, "exit_code": 1},
    "crashloop": {"exit_after": 0.5, "exit_code": 1, "ready_after": 0},
    "oom": {"oom_after": 2},
    "evicted": {"evict_after": 5},
    "never-ready": {"never_ready": True},
    "liveness-failure": {"live_for": 2},
    "startup-failure": {"startup_after": None},
    "slow-termination": {"termination": 3600},
}

_FIELD_TYPES = {f.name: f for f in fields(Scenario)}
_BOOL_TRUE = {"true", "yes", "1", "on"}
_BOOL_FALSE = {"false", "no", "0", "off"}


def _coerce(key: str, value: Any, where: str) -> Any:
    spec = _FIELD_TYPES[key]
    kind = str(spec.type)
    here = f"{where}: {key.replace('_', '-')}"
    if "Duration" in kind:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "never")):
            if "None" in kind:
                return None
            raise ScenarioError(f"{here} needs a duration")
        return Duration.parse(value, here)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in _BOOL_TRUE:
            return True
        if text in _BOOL_FALSE:
            return False
        raise ScenarioError(f"{here}: {value!r} is not a boolean (true/false)")
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise ScenarioError(f"{here}: {value!r} is not an integer") from exc
    return str(value)


def scenario_from_mapping(
    name: str, values: Mapping[str, Any], base: Scenario | None = None, where: str = "scenario"
) -> Scenario:
    """Build a scenario from ``{key: value}`` (YAML), keys in kebab- or snake-case."""
    changes: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key == "preset":
            continue
        if key not in _FIELD_TYPES or key == "name":
            known = ", ".join(sorted(k.replace("_", "-") for k in _FIELD_TYPES if k != "name"))
            raise ScenarioError(
                f"{where} {name!r}: unknown setting {raw_key!r}; known settings: {known}"
            )
        changes[key] = _coerce(key, value, f"{where} {name!r}")
    return replace(base or Scenario(), name=name, **changes)


@dataclass
class ScenarioBook:
    """Named scenarios, image rules and the default; resolves the scenario of a pod."""

    named: dict[str, Scenario] = field(default_factory=dict)
    image_rules: list[tuple[str, str]] = field(default_factory=list)  # (glob, spec)
    default: str = "ready"
    seed: int = 0

    def __post_init__(self) -> None:
        for preset, values in PRESETS.items():
            self.named.setdefault(preset, scenario_from_mapping(preset, values))
        self.parse(self.default, "default scenario")  # fail at start-up, not at the first pod
        for glob, spec in self.image_rules:
            self.parse(spec, f"image rule {glob!r}")

    def define(self, name: str, values: Mapping[str, Any]) -> Scenario:
        preset = values.get("preset")
        base = self.named.get(str(preset)) if preset else None
        if preset and base is None:
            raise ScenarioError(
                f"scenario {name!r}: unknown preset {preset!r}; "
                f"known: {', '.join(sorted(self.named))}"
            )
        self.named[name] = scenario_from_mapping(name, values, base)
        return self.named[name]

    def parse(self, spec: str, where: str = "scenario") -> Scenario:
        """``preset[,key=value...]`` or ``key=value,...`` (on top of the default)."""
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        if not parts:
            raise ScenarioError(
                f"{where}: empty scenario spec; use a preset name such as "
                f"{', '.join(sorted(self.named))}"
            )
        base: Scenario | None = None
        name = spec
        if "=" not in parts[0]:
            base = self.named.get(parts[0])
            if base is None:
                raise ScenarioError(
                    f"{where}: unknown scenario {parts[0]!r}; known: "
                    f"{', '.join(sorted(self.named))}"
                )
            parts = parts[1:]
            if not parts:
                return base
        overrides: dict[str, str] = {}
        for part in parts:
            key, sep, value = part.partition("=")
            if not sep:
                raise ScenarioError(f"{where}: {part!r} should be key=value (in {spec!r})")
            overrides[key.strip()] = value.strip()
        if base is None:
            base = self.named.get(self.default) if where != "default scenario" else None
        return scenario_from_mapping(name, overrides, base, where)

    def for_pod(self, pod: Mapping[str, Any]) -> ResolvedScenario:
        """The scenario of this pod, with its random timings drawn (stable per pod uid)."""
        meta = pod.get("metadata") or {}
        annotation = (meta.get("annotations") or {}).get(SCENARIO_ANNOTATION)
        uid = meta.get("uid") or meta.get("name") or ""
        if annotation:
            where = (
                f"pod {meta.get('namespace')}/{meta.get('name')} annotation {SCENARIO_ANNOTATION}"
            )
            scenario = self.parse(annotation, where)
        else:
            scenario = self._by_image(pod) or self.parse(self.default, "default scenario")
        return scenario.resolved(f"{self.seed}/{uid}")

    def for_pod_lenient(self, pod: Mapping[str, Any]) -> tuple[ResolvedScenario, str | None]:
        """Like :meth:`for_pod`, but a bad annotation falls back to the default scenario.

        Returns the error text too, so the kubelet can tell the pod's owner (as an event)
        instead of ignoring the pod: a typo in an annotation should not hang a test.
        """
        try:
            return self.for_pod(pod), None
        except ScenarioError as exc:
            meta = pod.get("metadata") or {}
            fallback = self.parse(self.default, "default scenario")
            return fallback.resolved(f"{self.seed}/{meta.get('uid') or meta.get('name')}"), str(exc)

    def _by_image(self, pod: Mapping[str, Any]) -> Scenario | None:
        containers = (pod.get("spec") or {}).get("containers") or []
        image = containers[0].get("image", "") if containers else ""
        for glob, spec in self.image_rules:
            if fnmatch.fnmatchcase(image, glob):
                return self.parse(spec, f"image rule {glob!r}")
        return None
