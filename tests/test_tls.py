"""TLS to the Hub: JupyterHub's internal_ssl layout and the JUPYTERHUB_SSL_* variables."""

import logging
import ssl

import pytest
from certipy import Certipy

from cull_idle import cull_idle as cull

from fakehub import VERSION, FakeHub, page, user


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """JupyterHub's layout: hub-ca/hub-ca.crt signs the Hub's certificate and the culler's."""
    root = tmp_path_factory.mktemp("internal-ssl")
    certipy = Certipy(store_dir=str(root))
    certipy.create_ca("hub-ca")
    certipy.create_signed_pair("hub-internal", "hub-ca", alt_names=["IP:127.0.0.1", "DNS:localhost"])
    certipy.create_ca("other-ca")
    certipy.create_signed_pair("impostor", "other-ca", alt_names=["IP:127.0.0.1"])
    return root


def tls_hub(certs, server_pair="hub-internal"):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs / "hub-ca" / "hub-ca.crt"))
    pair = certs / server_pair
    context.load_cert_chain(str(pair / f"{server_pair}.crt"), str(pair / f"{server_pair}.key"))
    context.verify_mode = ssl.CERT_REQUIRED
    return FakeHub(
        {
            **VERSION,
            "GET /users": [(200, page([user("tls-user")]))],
            "DELETE /users/tls-user/server": [(204, b"")],
        },
        ssl_context=context,
    )


async def test_ssl_enabled_uses_the_internal_certs_layout(certs, no_hub_env):
    hub = tls_hub(certs)
    try:
        report = await cull(hub.url, "t", 600, ssl_enabled=True, internal_certs_location=str(certs))
    finally:
        hub.close()
    assert report.complete and [a.user for a in report.stopped] == ["tls-user"]
    # The Hub required a client certificate, and the culler's was signed by the Hub's CA.
    assert hub.client_certs and all(c for c in hub.client_certs)


async def test_managed_service_ssl_variables(certs, no_hub_env, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SSL_CLIENT_CA", str(certs / "hub-ca" / "hub-ca.crt"))
    monkeypatch.setenv("JUPYTERHUB_SSL_CERTFILE", str(certs / "hub-internal" / "hub-internal.crt"))
    monkeypatch.setenv("JUPYTERHUB_SSL_KEYFILE", str(certs / "hub-internal" / "hub-internal.key"))
    hub = tls_hub(certs)
    try:
        report = await cull(hub.url, "t", 600)
    finally:
        hub.close()
    assert report.complete and len(report.stopped) == 1


async def test_a_hub_certificate_from_another_ca_is_refused(certs, no_hub_env, caplog):
    hub = tls_hub(certs, server_pair="impostor")
    try:
        with caplog.at_level(logging.WARNING, logger="cull_idle"):
            report = await cull(hub.url, "t", 600, ssl_enabled=True, internal_certs_location=str(certs))
    finally:
        hub.close()
    assert not report.complete and hub.calls("GET") == []
    assert "certificate" in report.errors[0].lower()
    # Another try would meet the same certificate: it is not retried, and counted as TLS.
    assert "retrying" not in caplog.text, caplog.text
    assert report.request_errors == {"tls": 1}, report.request_errors
