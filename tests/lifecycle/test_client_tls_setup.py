"""The API client's TLS context is made off the event loop, and nothing else changes.

Why: kubernetes_asyncio builds it in ``RESTClientObject.__init__`` on the loop, and with
no CA file configured that loads the system CA store (~50 ms, the longest single step of
a hub loading 20,000 pods, whose target is no stall over 50 ms).
"""

from __future__ import annotations

import ssl
import threading

import pytest
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.client import rest as k8s_rest
from kubesim.testing import run_simulator

from async_kubespawner.kube import client as kube_client
from async_kubespawner.kube.client import ApiSettings, build_api, close_shared_apis, shared_api


async def test_the_shared_client_gets_a_context_made_in_a_worker_thread(monkeypatch):
    made_in: list[int] = []
    made: list[ssl.SSLContext] = []
    real = kube_client.tls_context

    def recording(configuration: k8s_client.Configuration) -> ssl.SSLContext:
        made_in.append(threading.get_ident())
        made.append(real(configuration))
        return made[-1]

    monkeypatch.setattr(kube_client, "tls_context", recording)
    async with run_simulator() as sim:
        api = await shared_api(ApiSettings(kubeconfig=str(sim.kubeconfig_path)))
        try:
            assert made_in and made_in[0] != threading.get_ident()
            assert api.api_client.rest_client.pool_manager.connector._ssl is made[0]
            # and it works: one real request through that connector
            assert (await api.list_page(kube_client.PODS, "default"))["items"] == []
        finally:
            await close_shared_apis()
    assert k8s_rest.ssl is ssl  # the stand-in never outlives the construction


async def test_kubernetes_asyncio_still_applies_its_settings_to_our_context():
    configuration = k8s_client.Configuration()
    configuration.host = "https://127.0.0.1:6443"
    configuration.verify_ssl = False
    context = kube_client.tls_context(configuration)
    api = build_api(configuration, request_timeout=3, retry_timeout=30, ssl_context=context)
    await api.close()
    # RESTClientObject turned verification off on the context it was handed
    assert context.verify_mode == ssl.CERT_NONE and context.check_hostname is False
    assert k8s_rest.ssl is ssl


def test_the_ssl_module_is_restored_when_construction_fails(monkeypatch):
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no client for you")

    monkeypatch.setattr(k8s_client, "ApiClient", broken)
    configuration = k8s_client.Configuration()
    with pytest.raises(RuntimeError, match="no client for you"):
        build_api(configuration, request_timeout=3, retry_timeout=30,
                  ssl_context=ssl.create_default_context())
    assert k8s_rest.ssl is ssl
