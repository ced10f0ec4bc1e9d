"""The state log lines: emitted with namespace/pod when the level is on, and nothing
looked up or formatted when it is off."""

from __future__ import annotations

import logging

import pytest

from async_kubespawner import KubeSpawner
from async_kubespawner.testing import build_spawner, kubespawner_config


def test_a_state_line_names_the_pod(caplog: pytest.LogCaptureFixture) -> None:
    spawner = build_spawner(KubeSpawner, "alice", config=kubespawner_config({}))
    spawner.log = logging.getLogger("test-log-state-on")
    with caplog.at_level(logging.INFO, logger="test-log-state-on"):
        spawner._log_state("ready", "url=http://x:8888")
    assert [r.getMessage() for r in caplog.records] == [
        f"kubespawner pod={spawner.namespace}/{spawner.pod_name} state=ready url=http://x:8888"
    ]


def test_nothing_is_looked_up_when_the_level_is_off(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawner = build_spawner(KubeSpawner, "alice", config=kubespawner_config({}))
    spawner.log = logging.getLogger("test-log-state-off")

    def names_not_needed(_self: object) -> str:
        raise AssertionError("pod_name was looked up for a line that is not logged")

    monkeypatch.setattr(KubeSpawner, "pod_name", property(names_not_needed))
    with caplog.at_level(logging.WARNING, logger="test-log-state-off"):
        spawner._log_state("ready")
        with pytest.raises(AssertionError, match="looked up"):
            spawner._log_state("stop-timeout", level=logging.WARNING)
    assert caplog.records == []
