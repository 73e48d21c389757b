"""A real JupyterHub with ``internal_ssl = True``: its API is mutual TLS, with certificates the
Hub generates itself. The culler works with --ssl-enabled and with the JUPYTERHUB_SSL_*
variables a managed service is given, refuses a Hub certificate its CA did not sign, and sends
its client certificate (the Hub refuses connections without one)."""

from __future__ import annotations

import sys

import pytest

from culler_process import run
from hubharness.launcher import TestHub

pytestmark = pytest.mark.timeout(120)

IDLE = 3600


@pytest.fixture(scope="module")
def ssl_hub():
    managed = [
        sys.executable,
        "-m",
        "cull_idle",
        "--timeout=600",
        "--cull-every=1",
        "--exclude-users=cli-*",
    ]
    hub = TestHub(extra_env={"TEST_INTERNAL_SSL": "1", "TEST_MANAGED_CULLER": "\x1f".join(managed)}).start()
    yield hub
    hub.stop()


def idle_server(hub: TestHub, user: str) -> None:
    hub.create_users([user])
    hub.start_server(user)
    hub.set_times([{"user": user, "server": "", "last_activity_ago": IDLE}])


def env_for(hub: TestHub, ca: str, client_certificate: bool = True) -> dict[str, str]:
    """The variables a Hub gives a managed service, with the CA found under ``ca``."""
    env = {
        "JUPYTERHUB_API_URL": hub.api_url,
        "JUPYTERHUB_API_TOKEN": hub.cull_token,
        "JUPYTERHUB_SSL_CLIENT_CA": str(hub.certs / ca / f"{ca}.crt"),
    }
    if client_certificate:
        pair = hub.certs / "hub-internal"
        env["JUPYTERHUB_SSL_CERTFILE"] = str(pair / "hub-internal.crt")
        env["JUPYTERHUB_SSL_KEYFILE"] = str(pair / "hub-internal.key")
    return env


def test_the_hub_api_is_mutual_tls(ssl_hub):
    assert ssl_hub.api_url.startswith("https://")
    assert (ssl_hub.certs / "hub-ca" / "hub-ca.crt").exists()


def test_a_managed_culler_uses_the_variables_the_hub_gives_it(ssl_hub):
    idle_server(ssl_hub, "managed-a")
    ssl_hub.wait_for(lambda: not ssl_hub.running("managed-a"), "the managed culler to stop managed-a", 30)


def test_ssl_enabled_uses_the_internal_certificates(ssl_hub, tmp_path):
    idle_server(ssl_hub, "cli-enabled")
    env = {"JUPYTERHUB_API_URL": ssl_hub.api_url, "JUPYTERHUB_API_TOKEN": ssl_hub.cull_token}
    code, output = run(["--once", "--ssl-enabled", f"--internal-certs-location={ssl_hub.certs}"], env)
    assert code == 0, output
    assert "Culling server cli-enabled" in output
    assert not ssl_hub.running("cli-enabled")


def test_the_ssl_variables_are_used_without_ssl_enabled(ssl_hub):
    idle_server(ssl_hub, "cli-env")
    code, output = run(["--once"], env_for(ssl_hub, "hub-ca"))
    assert code == 0, output
    assert not ssl_hub.running("cli-env")


def test_a_hub_certificate_from_another_ca_is_refused(ssl_hub):
    idle_server(ssl_hub, "cli-foreign")
    # A CA of the same Hub, but not the one that signed the Hub's own certificate.
    code, output = run(["--once"], env_for(ssl_hub, "proxy-api-ca"))
    assert code == 1, output
    assert "invalid peer certificate: UnknownIssuer" in output and "Traceback" not in output, output
    assert ssl_hub.running("cli-foreign")


def test_without_a_client_certificate_the_hub_refuses_the_culler(ssl_hub):
    idle_server(ssl_hub, "cli-nocert")
    code, output = run(["--once"], env_for(ssl_hub, "hub-ca", client_certificate=False))
    assert code == 1, output
    assert "received fatal alert: CertificateRequired" in output and "Traceback" not in output, output
    assert ssl_hub.running("cli-nocert")
