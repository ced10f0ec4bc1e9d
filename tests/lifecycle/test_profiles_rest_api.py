"""user_options through a real JupyterHub app: the REST API's 400s, the spawn form, and
the order of group_overrides, profile overrides, apply_user_options and pre_spawn_hook.

The hub is JupyterHub's own ``MockHub`` (from its test utilities) with an in-memory
proxy; the spawner's start() records its settings and returns the hub's own URL, which
is enough for JupyterHub to consider the server up.
"""

import json
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jupyterhub
import pytest
from jupyterhub import orm
from jupyterhub.tests.mocking import MockHub
from jupyterhub.utils import random_port
from traitlets.config import Config

from tests.unit.profiles_support import (
    PROFILES,
    FormParser,
    InMemoryProxy,
    ProfileTestSpawner,
    spawn_body,
    stop_mock_hub,
)

#: JupyterHub (5.5 and later, the supported versions) answers a refused form with the
#: form again and status 400; the message and the re-rendered form are checked too.
REFUSED_FORM_STATUS = 400


class RecordingSpawner(ProfileTestSpawner):
    """Records what start() saw; reports the hub itself as the running server."""

    hub_url = ""
    events: list[str]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events = []

    async def start(self) -> str:
        self.events.append("start")
        url = await super().start()
        assert url
        return RecordingSpawner.hub_url


def apply_user_options(spawner: RecordingSpawner, user_options: dict[str, Any]) -> None:
    spawner.events.append(f"apply_user_options saw image={spawner.image}")
    spawner.environment = {**spawner.environment, "TEAM": str(user_options.get("team", ""))}


def pre_spawn_hook(spawner: RecordingSpawner) -> None:
    spawner.events.append(f"pre_spawn_hook saw image={spawner.image} cpu={spawner.cpu_limit}")
    if spawner.cpu_limit and spawner.cpu_limit > 4:
        spawner.cpu_limit = 4  # the operator's cap must beat the profile's 8


@pytest.fixture
async def hub() -> AsyncIterator[MockHub]:
    config = Config()
    config.JupyterHub.proxy_class = InMemoryProxy
    config.JupyterHub.spawner_class = RecordingSpawner
    config.JupyterHub.allow_named_servers = True
    # A plain base URL: MockHub's default ("/@/space%20word/") defeats aiohttp's cookie paths.
    config.JupyterHub.bind_url = f"http://127.0.0.1:{random_port()}/"
    config.JupyterHub.cookie_secret = os.urandom(32)  # else a secret file lands in the cwd
    config.Authenticator.admin_users = {"admin"}
    config.RecordingSpawner.profile_list = PROFILES
    config.RecordingSpawner.apply_user_options = apply_user_options
    config.RecordingSpawner.pre_spawn_hook = pre_spawn_hook
    config.RecordingSpawner.group_overrides = {
        "01-gpu-team": {
            "groups": ["gpu-team"],
            "spawner_override": {"image": "group:1", "environment": {"FROM_GROUP": "1"}},
        }
    }
    app = MockHub.instance(config=config)
    await app.initialize([])
    await app.start()
    RecordingSpawner.hub_url = app.hub.url
    try:
        yield app
    finally:
        await stop_mock_hub(app)


class HubClient:
    def __init__(self, app: MockHub, session: aiohttp.ClientSession) -> None:
        self.app = app
        self.session = session
        admin = app.db.query(orm.User).filter_by(name="admin").one()
        self.headers = {"Authorization": f"token {admin.new_api_token()}"}
        self.browsers: list[aiohttp.ClientSession] = []

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = self.app.hub.url + "api/" + path
        data = None if body is None else json.dumps(body)
        async with self.session.request(method, url, data=data, headers=self.headers) as r:
            text = await r.text()
            return r.status, (json.loads(text) if text else None)

    async def login(self, name: str) -> aiohttp.ClientSession:
        """A browser-like session logged in as `name` (the mock authenticator's password is the name)."""
        browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.browsers.append(browser)
        login = self.app.hub.url + "login"
        async with browser.get(login) as r:
            assert r.status == 200
        form = {"username": name, "password": name, "_xsrf": self._xsrf(browser)}
        async with browser.post(login, data=form, allow_redirects=False) as r:
            assert r.status == 302, await r.text()
        return browser

    @staticmethod
    def _xsrf(browser: aiohttp.ClientSession) -> str:
        return next(c.value for c in browser.cookie_jar if c.key == "_xsrf")

    async def get_page(self, browser: aiohttp.ClientSession, path: str) -> tuple[int, str]:
        async with browser.get(self.app.hub.url + path, allow_redirects=False) as r:
            return r.status, (await r.text()) or r.headers.get("Location", "")

    async def post_form(
        self, browser: aiohttp.ClientSession, path: str, form: dict[str, str]
    ) -> tuple[int, str]:
        """POST the spawn form as a browser would, with the _xsrf token of its session."""
        status, page = await self.get_page(browser, path)
        assert status == 200, page
        data = {**form, "_xsrf": self._xsrf(browser)}
        async with browser.post(self.app.hub.url + path, data=data, allow_redirects=False) as r:
            return r.status, await r.text()

    def spawner(self, user: str, server: str = "") -> RecordingSpawner:
        return self.app.users[user].spawners[server]


@pytest.fixture
async def client(hub: MockHub) -> AsyncIterator[HubClient]:
    async with aiohttp.ClientSession() as session:
        c = HubClient(hub, session)
        assert (await c.api("POST", "users/alice"))[0] == 201
        try:
            yield c
        finally:
            for browser in c.browsers:
                await browser.close()


@pytest.mark.parametrize(
    ("body", "field", "allowed"),
    [
        (spawn_body({"profile": "tpu"}), "'profile'", "'small-cpu', 'gpu'"),
        (spawn_body({"profile": "gpu", "size": "three"}), "'size'", "'one', 'two'"),
        (spawn_body({"profile": ["gpu"]}), "'profile'", "'small-cpu', 'gpu'"),
        (
            spawn_body({"profile": "small-cpu", "image--unlisted-choice": "ubuntu"}),
            "'image--unlisted-choice'",
            "Must be a pangeo image with a tag",
        ),
        ({"profile": "gpu", "size": 2}, "'size'", "'one', 'two'"),  # legacy body = user_options
    ],
)
async def test_invalid_user_options_are_a_400_for_the_api_caller(
    client: HubClient, body: dict[str, Any], field: str, allowed: str
) -> None:
    status, reply = await client.api("POST", "users/alice/servers/bad", body)
    assert status == 400, reply
    assert field in reply["message"]
    assert allowed in reply["message"]
    spawner = client.spawner("alice", "bad")
    assert "start" not in spawner.events
    assert spawner.started_with is None
    status, user = await client.api("GET", "users/alice")
    assert user["servers"] == {}


async def test_valid_options_spawn_with_overrides_in_the_documented_order(
    client: HubClient,
) -> None:
    assert (await client.api("POST", "groups/gpu-team", {"users": ["alice"]}))[0] == 201
    status, _ = await client.api(
        "POST",
        "users/alice/servers/work",
        spawn_body({"profile": "gpu", "size": "two", "team": "physics"}),
    )
    assert status == 201
    spawner = client.spawner("alice", "work")
    # JupyterHub < 5.3 has neither group_overrides nor apply_user_options; the profile
    # still applies before pre_spawn_hook there.
    hub_steps = jupyterhub.version_info[:2] >= (5, 3)
    assert spawner.events == [
        *(["apply_user_options saw image=cuda:12"] if hub_steps else []),  # group image replaced
        "pre_spawn_hook saw image=cuda:12 cpu=8.0",
        "start",
    ]
    started = spawner.started_with
    assert started is not None
    assert started["image"] == "cuda:12"
    assert started["namespace"] == "gpu-users"
    assert started["node_selector"] == {"gpu": "true"}
    assert started["cpu_limit"] == 4  # pre_spawn_hook has the last word
    assert started["environment"] == ({"FROM_GROUP": "1", "TEAM": "physics"} if hub_steps else {})
    assert started["pod_name_template"] == "gpu-{user_server}"
    assert started["pod_name"] == "gpu-alice--work"  # names recomputed after the profile
    assert spawner.profile_selection == {"profile": "gpu", "size": "two"}

    # The selection is in the stored state, so a restarted hub knows it.
    orm_spawner = client.app.users["alice"].orm_user.orm_spawners["work"]
    assert orm_spawner.state["profile_selection"] == {"profile": "gpu", "size": "two"}


async def test_empty_options_spawn_the_default_profile(client: HubClient) -> None:
    status, _ = await client.api("POST", "users/alice/servers/", {})
    assert status == 201
    spawner = client.spawner("alice")
    assert spawner.started_with is not None
    assert spawner.started_with["image"] == "cuda:12"
    assert spawner.started_with["cpu_limit"] == 4
    assert spawner.profile_selection == {"profile": "gpu", "size": "one"}


async def test_spawn_form_refuses_invalid_choice_with_a_400_and_the_form(
    client: HubClient,
) -> None:
    form = {"profile": "gpu", "profile-option-gpu--size": "seven"}
    browser = await client.login("alice")
    status, page = await client.post_form(browser, "spawn/alice/formtest", form)
    assert status == REFUSED_FORM_STATUS
    assert "&#39;seven&#39; is not a choice of option &#39;size&#39;" in page
    assert 'name="profile-option-gpu--size"' in page  # the form is shown again
    assert "start" not in client.spawner("alice", "formtest").events


async def test_spawn_form_shows_refused_free_text_again(client: HubClient) -> None:
    form = {
        "profile": "small-cpu",
        "profile-option-small-cpu--image": "unlisted-choice",
        "profile-option-small-cpu--image--unlisted-choice": "docker.io/typo:1",
    }
    browser = await client.login("alice")
    # The default server: JupyterHub 6.1 re-renders a refused form from user.spawner.
    status, page = await client.post_form(browser, "spawn/alice", form)
    assert status == REFUSED_FORM_STATUS
    assert "Must be a pangeo image with a tag" in page
    shown = FormParser()
    shown.feed(page)
    assert shown.checked_profile() == ["small-cpu"]
    (text,) = shown.named("profile-option-small-cpu--image--unlisted-choice")
    assert text["value"] == "docker.io/typo:1"


async def test_spawn_form_valid_choice_starts_and_preselects_next_time(
    client: HubClient,
) -> None:
    form = {
        "profile": "small-cpu",
        "profile-option-small-cpu--image": "unlisted-choice",
        "profile-option-small-cpu--image--unlisted-choice": "pangeo/ml:7",
        "profile-option-gpu--size": "two",
    }
    browser = await client.login("alice")
    status, page = await client.post_form(browser, "spawn/alice/formtest", form)
    assert status == 302, page
    spawner = client.spawner("alice", "formtest")
    assert spawner.started_with is not None
    assert spawner.started_with["image"] == "pangeo/ml:7"
    stored = client.app.users["alice"].orm_user.orm_spawners["formtest"].user_options
    assert stored == {
        "profile": "small-cpu",
        "image": "unlisted-choice",
        "image--unlisted-choice": "pangeo/ml:7",
    }

    assert (await client.api("DELETE", "users/alice/servers/formtest"))[0] in (202, 204)
    status, page = await client.get_page(browser, "spawn/alice/formtest")
    assert status == 200
    form_page = FormParser()
    form_page.feed(page)
    assert form_page.checked_profile() == ["small-cpu"]
    assert form_page.selected("profile-option-small-cpu--image") == "unlisted-choice"
    (text,) = form_page.named("profile-option-small-cpu--image--unlisted-choice")
    assert text["value"] == "pangeo/ml:7"


async def test_a_body_shaped_for_jupyterhub_6_on_either_version(client: HubClient) -> None:
    """JupyterHub 6 reads ``user_options`` from the body's key; JupyterHub 5 takes the
    body itself, where the nested shape would silently start the default profile: a 400
    naming the fix there, before anything starts."""
    body = {"user_options": {"profile": "small-cpu"}}
    status, reply = await client.api("POST", "users/alice/servers/shape", body)
    spawner = client.spawner("alice", "shape")
    if jupyterhub.version_info[0] >= 6:
        assert status == 201, reply
        assert spawner.profile_selection is not None
        assert spawner.profile_selection["profile"] == "small-cpu"
    else:
        assert status == 400, reply
        assert "takes the options as the request body itself" in reply["message"]
        assert "start" not in spawner.events
