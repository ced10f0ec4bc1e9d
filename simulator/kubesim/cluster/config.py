"""The cluster's configuration: one dataclass, loadable from YAML and from command-line options.

Example YAML (every key optional)::

    clock: real            # or "fast", or a number: real seconds per cluster second
    seed: 42
    nodes:
      - {count: 3, cpu: "4", memory: 16Gi, labels: {pool: users}}
      - {name_prefix: gpu, count: 1, extended: {nvidia.com/gpu: "2"},
         taints: ["nvidia.com/gpu=present:NoSchedule"]}
    default_scenario: ready
    scenarios:
      slow-start: {preset: random, pull: 5-20}
    image_rules:
      - {image: "*/broken:*", scenario: image-pull-failure}
    storage_classes:
      - {name: standard, default: true, bind_delay: 2}
    persistent_volumes:
      - {name: pv-home, capacity: 10Gi, access_modes: [ReadWriteOnce]}
    process_mode: true
    image_commands:
      "quay.io/jupyterhub/singleuser:*": [jupyterhub-singleuser]
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .clock import FAST_SCALE, Clock
from .nodes import NodeConfigError, NodePoolSpec, Taint
from .pvc import PersistentVolumeSpec, StorageClassSpec
from .scenarios import ScenarioBook, ScenarioError

DEFAULT_IMAGE_COMMANDS: dict[str, list[str]] = {
    "quay.io/jupyterhub/singleuser:*": ["jupyterhub-singleuser"],
    "jupyterhub/singleuser:*": ["jupyterhub-singleuser"],
    "quay.io/jupyter/*": ["jupyterhub-singleuser"],
    "jupyter/*": ["jupyterhub-singleuser"],
}


class ClusterConfigError(ValueError):
    """The cluster configuration (YAML or options) is not usable; the message says where."""


@dataclass
class ClusterConfig:
    nodes: list[NodePoolSpec] = field(default_factory=lambda: [NodePoolSpec(count=3)])
    clock: str | float = "real"
    seed: int = 0
    default_scenario: str = "ready"
    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)
    image_rules: list[tuple[str, str]] = field(default_factory=list)
    storage_classes: list[StorageClassSpec] = field(
        default_factory=lambda: [StorageClassSpec(name="standard", default=True)]
    )
    persistent_volumes: list[PersistentVolumeSpec] = field(default_factory=list)
    process_mode: bool = False
    image_commands: dict[str, list[str]] = field(
        default_factory=lambda: dict(DEFAULT_IMAGE_COMMANDS)
    )
    # where process mode writes per-pod files (secrets, config maps, logs); None = a temp dir
    process_root: str | None = None
    # process mode: the first three octets given out as pod IPs (127.x.y.z)
    pod_ip_prefix: str = "127.1"
    # stub-server mode: pods on loopback IPs answer HTTP on their ports from the simulator
    stub_servers: bool = False
    stub_ip_prefix: str = "127.2"

    @classmethod
    def fast(cls, **overrides: Any) -> ClusterConfig:
        """The test configuration: fast clock, three default nodes."""
        return cls(clock="fast", **overrides)

    def make_clock(self) -> Clock:
        if self.clock == "fast":
            return Clock.fast()
        if self.clock == "real":
            return Clock.real()
        try:
            return Clock(float(self.clock))
        except (TypeError, ValueError) as exc:
            raise ClusterConfigError(
                f"clock: {self.clock!r} is not 'real', 'fast' or a number of real seconds per "
                f"cluster second (fast is {FAST_SCALE})"
            ) from exc

    def make_scenarios(self) -> ScenarioBook:
        try:
            book = ScenarioBook(seed=self.seed)
            for name, values in self.scenarios.items():
                if not isinstance(values, dict):
                    raise ClusterConfigError(
                        f"scenarios.{name}: expected a mapping of settings, got {values!r}"
                    )
                book.define(name, values)
            book.image_rules = list(self.image_rules)
            book.default = self.default_scenario
            book.__post_init__()  # validate default and rules against the defined names
        except ScenarioError as exc:
            raise ClusterConfigError(str(exc)) from exc
        return book

    # ---------------------------------------------------------------- loading

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str = "cluster config") -> ClusterConfig:
        if not isinstance(data, dict):
            raise ClusterConfigError(
                f"{where}: expected a mapping at the top level, got {type(data).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ClusterConfigError(
                f"{where}: unknown key(s) {', '.join(unknown)}; known keys: "
                f"{', '.join(sorted(known))}"
            )
        config = cls()
        for key, value in data.items():
            here = f"{where}: {key}"
            if key == "nodes":
                config.nodes = [_node_pool(v, f"{here}[{i}]") for i, v in enumerate(value or [])]
            elif key == "storage_classes":
                config.storage_classes = [
                    _build(StorageClassSpec, v, f"{here}[{i}]") for i, v in enumerate(value or [])
                ]
            elif key == "persistent_volumes":
                config.persistent_volumes = [
                    _build(PersistentVolumeSpec, v, f"{here}[{i}]")
                    for i, v in enumerate(value or [])
                ]
            elif key == "image_rules":
                config.image_rules = [
                    _image_rule(v, f"{here}[{i}]") for i, v in enumerate(value or [])
                ]
            elif key == "image_commands":
                if not isinstance(value, dict):
                    raise ClusterConfigError(
                        f"{here}: expected a mapping image-glob -> command list"
                    )
                config.image_commands = {
                    str(k): ([v] if isinstance(v, str) else [str(x) for x in v])
                    for k, v in value.items()
                }
            else:
                setattr(config, key, value)
        try:
            config.validate()
        except ClusterConfigError as exc:
            text = str(exc)
            raise ClusterConfigError(
                text if text.startswith(where) else f"{where}: {text}"
            ) from None
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> ClusterConfig:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise ClusterConfigError(f"cannot read cluster config {path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise ClusterConfigError(f"cluster config {path} is not valid YAML: {exc}") from exc
        return cls.from_mapping(data, where=str(path))

    def validate(self) -> None:
        self.make_clock()
        self.make_scenarios()
        try:
            for pool in self.nodes:
                pool.validate()
        except NodeConfigError as exc:
            raise ClusterConfigError(str(exc)) from exc
        if self.stub_servers and self.process_mode:
            raise ClusterConfigError(
                "stub_servers and process_mode exclude each other: pods are either real "
                "processes or answered by the simulator"
            )
        self._check_ip_prefix("pod_ip_prefix", self.pod_ip_prefix)
        self._check_ip_prefix("stub_ip_prefix", self.stub_ip_prefix)

    @staticmethod
    def _check_ip_prefix(name: str, prefix: str) -> None:
        parts = prefix.split(".")
        if (
            len(parts) != 2
            or parts[0] != "127"
            or not all(p.isdigit() and int(p) < 256 for p in parts)
        ):
            raise ClusterConfigError(
                f"{name}: {prefix!r} must look like '127.N' (pods get 127.N.x.y)"
            )

    # ---------------------------------------------------------------- command line

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("simulated cluster (nodes, scheduler, kubelet)")
        group.add_argument(
            "--cluster-config",
            metavar="YAML",
            help="cluster configuration file (nodes, scenarios, storage, process mode)",
        )
        group.add_argument(
            "--no-cluster",
            action="store_true",
            help="serve the API only: no nodes, scheduler or kubelet",
        )
        group.add_argument("--nodes", type=int, metavar="N", help="number of nodes (default 3)")
        group.add_argument("--node-cpu", metavar="Q", help="cpu per node (default 4)")
        group.add_argument("--node-memory", metavar="Q", help="memory per node (default 16Gi)")
        group.add_argument("--node-gpus", metavar="N", help="nvidia.com/gpu per node")
        group.add_argument(
            "--node-taint",
            action="append",
            metavar="KEY=VALUE:EFFECT",
            help="taint every node (repeatable)",
        )
        group.add_argument(
            "--scenario",
            metavar="SPEC",
            help="default scenario for all pods, e.g. 'ready', 'random', 'crash,exit-after=5'",
        )
        group.add_argument(
            "--image-scenario",
            action="append",
            metavar="GLOB=SPEC",
            help="scenario for pods whose image matches GLOB (repeatable)",
        )
        group.add_argument("--seed", type=int, help="seed for random scenario timings")
        group.add_argument(
            "--clock", help="'real' (default), 'fast', or real seconds per cluster second"
        )
        group.add_argument(
            "--fast",
            action="store_true",
            help="shorthand for --clock fast: pod lifecycles in milliseconds",
        )
        group.add_argument(
            "--process-mode",
            action="store_true",
            help="run each pod's main container as a real local process",
        )
        group.add_argument(
            "--stub-servers",
            action="store_true",
            help="pods get loopback IPs and the simulator answers HTTP on their ports "
            "(no process per pod: for load tests of thousands of servers)",
        )
        group.add_argument(
            "--image-command",
            action="append",
            metavar="GLOB=COMMAND",
            help="process mode: command for images matching GLOB when the pod "
            "gives none (repeatable), e.g. "
            "'quay.io/jupyterhub/singleuser:*=jupyterhub-singleuser'",
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ClusterConfig:
        config = cls.from_yaml(args.cluster_config) if args.cluster_config else cls()
        pool = config.nodes[0] if config.nodes else NodePoolSpec()
        if args.nodes is not None:
            pool.count = args.nodes
        if args.node_cpu:
            pool.cpu = args.node_cpu
        if args.node_memory:
            pool.memory = args.node_memory
        if args.node_gpus:
            pool.extended["nvidia.com/gpu"] = args.node_gpus
        try:
            for taint in args.node_taint or []:
                pool.taints.append(Taint.parse(taint))
        except NodeConfigError as exc:
            raise ClusterConfigError(f"--node-taint: {exc}") from exc
        if not config.nodes:
            config.nodes = [pool]
        if args.scenario:
            config.default_scenario = args.scenario
        for rule in args.image_scenario or []:
            glob, sep, spec = rule.partition("=")
            if not sep:
                raise ClusterConfigError(f"--image-scenario {rule!r}: expected GLOB=SPEC")
            config.image_rules.append((glob, spec))
        if args.seed is not None:
            config.seed = args.seed
        if getattr(args, "fast", False):
            config.clock = "fast"
        if args.clock:
            config.clock = args.clock
        if args.process_mode:
            config.process_mode = True
        if getattr(args, "stub_servers", False):
            config.stub_servers = True
        for mapping in args.image_command or []:
            glob, sep, command = mapping.partition("=")
            if not sep or not command.strip():
                raise ClusterConfigError(f"--image-command {mapping!r}: expected GLOB=COMMAND")
            config.image_commands[glob] = command.split()
        config.validate()
        return config


def _build(cls: type, value: Any, where: str) -> Any:
    if isinstance(value, str) and cls is StorageClassSpec:
        value = {"name": value}
    if not isinstance(value, dict):
        raise ClusterConfigError(f"{where}: expected a mapping, got {value!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - names)
    if unknown:
        raise ClusterConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
        )
    try:
        return cls(**value)
    except (TypeError, ValueError) as exc:
        raise ClusterConfigError(f"{where}: {exc}") from exc


def _node_pool(value: Any, where: str) -> NodePoolSpec:
    if not isinstance(value, dict):
        raise ClusterConfigError(f"{where}: expected a mapping, got {value!r}")
    value = dict(value)
    try:
        value["taints"] = [
            t
            if isinstance(t, Taint)
            else Taint.parse(t)
            if isinstance(t, str)
            else Taint(key=t["key"], value=t.get("value", ""), effect=t["effect"])
            for t in value.get("taints") or []
        ]
        pool = _build(NodePoolSpec, value, where)
        for key in ("cpu", "memory", "reserved_cpu", "reserved_memory"):
            setattr(pool, key, str(getattr(pool, key)))
        pool.extended = {str(k): str(v) for k, v in pool.extended.items()}
        pool.labels = {str(k): str(v) for k, v in pool.labels.items()}
        pool.validate()
    except (NodeConfigError, KeyError) as exc:
        raise ClusterConfigError(f"{where}: {exc}") from exc
    return pool


def _image_rule(value: Any, where: str) -> tuple[str, str]:
    if not isinstance(value, dict) or set(value) != {"image", "scenario"}:
        raise ClusterConfigError(
            f"{where}: expected {{image: GLOB, scenario: SPEC}}, got {value!r}"
        )
    return str(value["image"]), str(value["scenario"])
