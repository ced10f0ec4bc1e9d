"""``examples/internal-ssl`` end to end: hub, proxy and server talk TLS through a real hub.

The hub makes the certificates and starts the proxy with its own; the spawner hands the
server its certificate in an owned Secret mounted at ``/etc/jupyterhub/ssl``, which the
server process (process mode) opens by that path. The server is reached through the proxy
over https with the hub's CA: had the Secret not reached the process, the server would
not start; had the certificate not named its address, the proxy would refuse it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.local_stack import SimulatorOptions

from .conftest import keep_logs
from .hub_stack import REPO_ROOT, HubStack, spawn, stop, stored

pytestmark = pytest.mark.e2e

CONFIG = REPO_ROOT / "examples" / "internal-ssl" / "jupyterhub_config.py"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubStack]:
    state_dir = tmp_path_factory.mktemp("internal-ssl")
    hub = HubStack(
        state_dir=state_dir,
        base_config=CONFIG,
        simulator=SimulatorOptions(process_mode=True, fast=True),
        proxy_started_by_hub=True,
    ).start()
    try:
        yield hub
    finally:
        hub.stop()
        keep_logs(state_dir, "test_internal_ssl_locally")


def test_server_is_reached_over_tls_with_its_certificate_from_an_owned_secret(
    stack: HubStack,
) -> None:
    spawn(stack, "hana")  # asserts the server answers through the proxy
    pod = stored(stack, "/api/v1/namespaces/default/pods/jupyter-hana")
    assert pod is not None
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["JUPYTERHUB_SSL_KEYFILE"].startswith("/etc/jupyterhub/ssl/")
    mounted = {m["mountPath"].rstrip("/"): m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    secret_name = volumes[mounted["/etc/jupyterhub/ssl"]]["secret"]["secretName"]
    secret = stored(stack, f"/api/v1/namespaces/default/secrets/{secret_name}")
    assert secret is not None and {"ssl.key", "ssl.crt"} <= set(secret["data"])
    assert secret["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]
    assert stack.user_model("hana")["servers"][""]["url"] == "/user/hana/"
    stop(stack, "hana")
    assert stored(stack, "/api/v1/namespaces/default/pods/jupyter-hana") is None
    assert stored(stack, f"/api/v1/namespaces/default/secrets/{secret_name}") is None
