"""The hub profile's attribution: each sampled stack is charged to exactly one component."""

from __future__ import annotations

from benchmarks.hub_profile import OTHER, attribute, component_of, markdown, parse_raw

HUB = "<module> (jupyterhub/__main__.py:3);BaseEventLoop._run_once (asyncio/base_events.py:1922)"


def test_raw_lines_parse_into_frames_and_counts_skipping_junk() -> None:
    lines = [f"{HUB};hash_token (jupyterhub/utils.py:475) 7\n", "\n", "no count here\n"]
    stacks = parse_raw(lines)
    assert stacks == [([*HUB.split(";"), "hash_token (jupyterhub/utils.py:475)"], 7)]


def test_the_spawner_wins_over_what_it_calls() -> None:
    frames = [*HUB.split(";"), "KubeSpawner.start (async_kubespawner/spawner.py:245)", "Session.flush (sqlalchemy/orm/session.py:4626)"]
    assert component_of(frames).startswith("spawner")
    upstream = [*HUB.split(";"), "KubeSpawner._start (kubespawner/spawner.py:2800)"]
    assert component_of(upstream).startswith("spawner")


def test_components_and_shares() -> None:
    stacks = [
        ([*HUB.split(";"), "Session.flush (sqlalchemy/orm/session.py:4626)"], 6),
        ([*HUB.split(";"), "compare_token (jupyterhub/utils.py:494)", "hash_token (jupyterhub/utils.py:475)"], 3),
        ([*HUB.split(";"), "EpollSelector.select (selectors.py:468)"], 1),
        ([*HUB.split(";"), "Handle._run (asyncio/events.py:80)"], 2),
    ]
    shares = attribute(stacks)
    assert list(shares) == ["database (SQLAlchemy)",
                            "API token hashing (jupyterhub.utils.hash_token)", OTHER,
                            "waiting for I/O (select)"]
    assert shares["database (SQLAlchemy)"] == {"samples": 6, "share": 0.5}
    assert sum(row["samples"] for row in shares.values()) == 12
    assert len(markdown(shares)) == 2 + len(shares)
    assert attribute([]) == {}
