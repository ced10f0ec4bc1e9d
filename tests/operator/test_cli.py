"""The operator's command line: settings from the options, bad values refused up front."""

from __future__ import annotations

import pytest

from async_kubespawner.operator.app import parse_args, settings_from_args


def test_options_become_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "jhub")
    settings = settings_from_args(parse_args(["--identity", "op-1", "--workers", "4",
                                              "--unschedulable-tolerance", "60"]))
    assert settings.namespace is None and settings.lease_namespace == "jhub"
    assert settings.identity == "op-1" and settings.workers == 4
    assert settings.tolerances.unschedulable == 60
    assert settings_from_args(parse_args(["--namespace", "ns"])).lease_namespace == "ns"


@pytest.mark.parametrize(("argv", "message"), [
    (["--workers", "0"], "at least one worker"),
    (["--resync-period", "0"], "positive"),
    (["--config-error-tolerance", "-1"], "cannot be negative"),
    (["--health-port", "70000"], "0 (off) to 65535"),
    (["--critical-reserve", "9"], "0 to a third of --requests-in-flight 24"),
    (["--requests-in-flight", "6", "--critical-reserve", "3"], "0 to a third"),
])
def test_bad_options_are_refused(argv: list[str], message: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
