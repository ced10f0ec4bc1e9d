"""Internal SSL and the API token in a Secret, end to end against the simulator.

The hub gives the spawner ``internal_ssl`` and ``cert_paths`` (files it generated on its
own disk); the pod must receive those files through a Secret it owns, mounted at
``secret_mount_path``, and be reached over https at its Service's DNS name. Whatever
start() made must be gone after stop() and after a failed start, and the garbage
collector must be able to remove it on its own (owner references carry the pod's uid).
"""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from async_kubespawner.spawner import SpawnFailed

from . import conftest
from .conftest import NAMESPACE, store_pods

SSL_KEYS = {"ssl.key", "ssl.crt", "notebooks-ca_trust.crt"}


def objects(sim: Any, plural: str) -> list[dict[str, Any]]:
    return sim.store.list(sim.store.resource(plural), NAMESPACE)[0]


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    dns_names: list[str] = (),  # type: ignore[assignment]
) -> bytes:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def cert_files() -> dict[str, bytes]:
    """A throwaway CA and a server certificate signed by it (PEM, by cert_paths key)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    files = {
        "cafile": _certificate("notebooks-ca", ca_key, "notebooks-ca", ca_key, ca=True),
        "keyfile": _pem_key(server_key),
        "certfile": _certificate(
            "jupyter-alice",
            server_key,
            "notebooks-ca",
            ca_key,
            ca=False,
            dns_names=["jupyter-alice", "jupyter-alice.default.svc.cluster.local"],
        ),
    }
    return files


@pytest.fixture
def cert_paths(tmp_path: Path, cert_files: dict[str, bytes]) -> dict[str, str]:
    """The certificates as the hub writes them: files on its own disk."""
    paths = {}
    for key, content in cert_files.items():
        path = tmp_path / f"{key}.pem"
        path.write_bytes(content)
        paths[key] = str(path)
    return paths


def ssl_spawner(make_spawner: Any, cert_paths: dict[str, str], **config: Any) -> Any:
    """``internal_ssl`` and ``cert_paths`` are not configuration: the hub sets them on the
    spawner object (after create_certs/move_certs), so the test does too."""
    spawner = make_spawner(**config)
    spawner.internal_ssl = True
    spawner.cert_paths = cert_paths
    return spawner


def secret_files(secret: dict[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


async def test_internal_ssl_end_to_end(sim, make_spawner, cert_paths, cert_files, tmp_path):
    spawner = ssl_spawner(make_spawner, cert_paths, secret_mount_path="/etc/certs/notebook/")
    # The hub's own CA joins the pod's trust bundle, so the server accepts the hub's
    # client certificate.
    hub_ca_key = ec.generate_private_key(ec.SECP256R1())
    hub_ca = _certificate("hub-ca", hub_ca_key, "hub-ca", hub_ca_key, ca=True)
    (tmp_path / "hub-ca.pem").write_bytes(hub_ca)
    spawner.internal_trust_bundles = {"hub-ca": str(tmp_path / "hub-ca.pem")}
    url = await spawner.start()
    assert url == f"https://{spawner.dns_name}:8888"

    [pod] = store_pods(sim)
    uid = pod["metadata"]["uid"]
    [secret] = [s for s in objects(sim, "secrets") if s["metadata"]["name"] == spawner.secret_name]
    assert [(o["kind"], o["uid"]) for o in secret["metadata"]["ownerReferences"]] == [("Pod", uid)]
    files = secret_files(secret)
    assert set(files) == SSL_KEYS
    assert files["ssl.key"] == cert_files["keyfile"].decode()
    assert files["ssl.crt"] == cert_files["certfile"].decode()
    assert files["notebooks-ca_trust.crt"] == cert_files["cafile"].decode() + hub_ca.decode()

    [service] = objects(sim, "services")
    assert service["metadata"]["name"] == spawner.pod_name
    assert [o["uid"] for o in service["metadata"]["ownerReferences"]] == [uid]

    [volume] = [v for v in pod["spec"]["volumes"] if (v.get("secret") or {}).get("secretName")]
    assert volume["secret"]["secretName"] == spawner.secret_name
    [container] = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["mountPath"].rstrip("/") == "/etc/certs/notebook"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["JUPYTERHUB_SSL_KEYFILE"] == "/etc/certs/notebook/ssl.key"
    assert env["JUPYTERHUB_SSL_CERTFILE"] == "/etc/certs/notebook/ssl.crt"
    assert env["JUPYTERHUB_SSL_CLIENT_CA"] == "/etc/certs/notebook/notebooks-ca_trust.crt"
    # The hub's own paths mean nothing inside the pod and must not leak into it.
    assert not any(path in json.dumps(pod) for path in cert_paths.values())

    await spawner.stop()
    await sim.store.wait_gc_idle()
    assert store_pods(sim) == []
    assert [
        s for s in objects(sim, "secrets") if s["metadata"]["name"] == spawner.secret_name
    ] == []
    assert objects(sim, "services") == []


async def test_secret_and_service_are_collected_with_their_pod(sim, make_spawner, cert_paths):
    """Deleted out of band (not by stop()): the garbage collector follows the owner
    references, which proves they name the pod that really exists."""
    spawner = ssl_spawner(make_spawner, cert_paths)
    await spawner.start()
    [pod] = store_pods(sim)
    await sim.store.delete(
        sim.store.resource("pods"), NAMESPACE, pod["metadata"]["name"], grace_period_seconds=0
    )
    await sim.store.wait_gc_idle()
    assert [
        s for s in objects(sim, "secrets") if s["metadata"]["name"] == spawner.secret_name
    ] == []
    assert objects(sim, "services") == []


async def test_api_token_in_secret_keeps_the_token_out_of_the_pod(sim, make_spawner):
    spawner = make_spawner(api_token_in_secret=True)
    await spawner.start()
    [pod] = store_pods(sim)
    token = spawner.api_token
    assert token and token not in json.dumps(pod)
    [container] = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    env = {e["name"]: e for e in container["env"]}
    for name in ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"):
        if name in env:
            assert "value" not in env[name]
            ref = env[name]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == spawner.secret_name
    assert "JUPYTERHUB_API_TOKEN" in env
    [secret] = [s for s in objects(sim, "secrets") if s["metadata"]["name"] == spawner.secret_name]
    key = env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]["key"]
    assert secret_files(secret)[key] == token
    await spawner.stop()


async def test_failed_start_leaves_no_pod_secret_or_service(sim, make_spawner, kubelet, cert_paths):
    kubelet.default_fate = conftest.image_pull_fails
    spawner = ssl_spawner(make_spawner, cert_paths, api_token_in_secret=True, start_timeout=300)
    with pytest.raises(SpawnFailed, match="cannot be pulled"):
        await spawner.start()
    await sim.store.wait_gc_idle()
    assert store_pods(sim) == []
    assert [
        s for s in objects(sim, "secrets") if s["metadata"]["name"] == spawner.secret_name
    ] == []
    assert objects(sim, "services") == []
