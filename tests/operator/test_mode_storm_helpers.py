"""The operator-mode storm's arithmetic: metrics parsing, rates, overheads, sizes."""

from __future__ import annotations

import os

from benchmarks.operator_mode_storm import (
    MetricsSampler,
    parse_metrics,
    process_cpu_seconds,
    start_overheads,
)
from benchmarks.operator_replica import deep_size

METRICS = """# HELP kubespawner_operator_reconciles_total passes
kubespawner_operator_reconciles_total{outcome="ok"} 120.0
kubespawner_operator_reconciles_total{outcome="requeue"} 30.0
kubespawner_operator_queue_depth 4.0
kubespawner_operator_leader 1.0
kubespawner_api_requests_total{verb="get"} 9.0
"""


def test_metrics_are_summed_by_name_and_other_series_ignored() -> None:
    m = parse_metrics(METRICS)
    assert m == {"kubespawner_operator_reconciles_total": 150.0,
                 "kubespawner_operator_queue_depth": 4.0, "kubespawner_operator_leader": 1.0}


def test_rates_count_busy_intervals_only_while_the_queue_has_work() -> None:
    sampler = MetricsSampler([], session=None, interval=1.0)  # type: ignore[arg-type]
    sampler.samples = [
        (0.0, "a", 0.0, 5.0), (1.0, "a", 300.0, 5.0),  # busy: 300/s
        (2.0, "a", 400.0, 0.0),                          # draining: counted overall only
        (3.0, "b", 0.0, 0.0),                            # a new leader's counter: skipped
        (4.0, "b", 10.0, 0.0),
    ]
    rates = sampler.rates()
    assert rates["busy"] == 300.0 and rates["busy_seconds"] == 1.0
    assert rates["reconciles"] == 410 and rates["overall"] == round(410 / 3, 1)
    assert rates["peak_interval"] == 300.0


def test_start_overhead_is_returned_minus_the_ready_mark_of_that_pod() -> None:
    marks = {"ready": [["default", "jupyter-a", "u1", 10.0], ["other", "jupyter-a", "u", 0.0],
                       ["default", "jupyter-b", "u2", 11.0]]}
    got = sorted(start_overheads({"jupyter-a": 10.02, "jupyter-b": 11.5, "x": 1.0}, marks))
    assert [round(v, 3) for v in got] == [0.02, 0.5]


def test_cpu_seconds_of_this_process_grow_and_of_a_missing_process_are_zero() -> None:
    before = process_cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert process_cpu_seconds(os.getpid()) > before
    assert process_cpu_seconds(2**22 + 12345) == 0.0


def test_deep_size_counts_shared_objects_once() -> None:
    payload = ["x" * 1000]
    one = deep_size([{"a": payload}])
    both = deep_size([{"a": payload, "b": payload}])
    assert one > 1000 and both - one < 200  # the 1 KB string is not counted twice
