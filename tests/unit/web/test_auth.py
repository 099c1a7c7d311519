"""Basic auth on the exporter's endpoints, and real TLS and mTLS handshakes with its server."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
from prometheus_client import CollectorRegistry

from exporter.poll.health import Health
from exporter.sinks.metrics.selfmetrics import SelfMetrics
from exporter.web.app import create_app
from exporter.web.auth import BasicAuth, credentials, protect
from exporter.web.config import TlsServerConfig, WebConfig
from exporter.web.reload import LiveWebConfig
from exporter.web.server import serve_in_loop
from tests.unit.certs import Pki, make_pki
from tests.unit.fakeclock import FakeClock

PASSWORD = "correct-horse-battery"
USERS = {"prometheus": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4))}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Served:
    """The exporter's app behind `protect`, with its self-metrics on a fresh registry."""

    def __init__(self, health_without_auth: bool = False) -> None:
        self.registry = CollectorRegistry()
        self.metrics = SelfMetrics(self.registry)
        health = Health(15)
        health.add("support", 1_800_000_000.0).last_success = 1_800_000_000.0
        self.app = protect(
            create_app(self.registry, health, FakeClock()),
            LiveWebConfig(WebConfig(users=USERS)),
            health_without_auth=health_without_auth,
            on_failure=self.metrics.count_auth_failure,
        )

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
                return await client.get(path, headers=headers)

        return asyncio.run(go())

    def failures(self, reason: str) -> float | None:
        labels = {"reason": reason}
        return self.registry.get_sample_value("agent_runs_exporter_web_auth_failures_total", labels)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (None, "missing"),
        ({"Authorization": "Bearer abc"}, "malformed"),
        ({"Authorization": "Basic !!!not-base64"}, "malformed"),
        ({"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}, "malformed"),
        (basic("prometheus", "wrong-password"), "wrong_credentials"),
        (basic("mallory", PASSWORD), "wrong_credentials"),
    ],
)
def test_refused_requests_get_401_with_a_challenge_and_are_counted(
    headers: dict[str, str] | None, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    served = Served()
    with caplog.at_level(logging.DEBUG):
        response = served.get("/metrics", headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert served.failures(reason) == 1
    assert "agent_runs_total" not in response.text
    assert PASSWORD not in caplog.text
    assert "wrong-password" not in caplog.text
    assert "mallory" not in caplog.text
    assert f"{reason.replace('_', ' ')} credentials" in caplog.text


def test_right_credentials_get_the_metrics() -> None:
    served = Served()
    response = served.get("/metrics", basic("prometheus", PASSWORD))
    assert response.status_code == 200
    assert 'agent_runs_exporter_web_auth_failures_total{reason="missing"} 0.0' in response.text


@pytest.mark.parametrize("path", ["/", "/metrics", "/healthz", "/readyz"])
def test_every_endpoint_needs_credentials_by_default(path: str) -> None:
    assert Served().get(path).status_code == 401


def test_health_endpoints_can_be_left_open_for_probes() -> None:
    served = Served(health_without_auth=True)
    assert served.get("/healthz").status_code == 200
    assert served.get("/readyz").status_code in (200, 503)
    assert served.get("/metrics").status_code == 401
    assert served.get("/").status_code == 401


def test_bcrypt_runs_once_for_repeated_scrapes() -> None:
    served = Served()
    for _ in range(5):
        assert served.get("/metrics", basic("prometheus", PASSWORD)).status_code == 200
    assert isinstance(served.app, BasicAuth)
    assert served.app.check.bcrypt_checks == 1


def test_without_a_web_config_file_the_app_is_not_wrapped() -> None:
    app: Any = object()
    assert (
        protect(app, LiveWebConfig(WebConfig()), health_without_auth=False, on_failure=print) is app
    )


def test_credentials_parsing() -> None:
    assert credentials("Basic " + base64.b64encode(b"a:b:c").decode()) == ("a", "b:c")
    assert credentials("basic " + base64.b64encode("ü:ß".encode()).decode()) == ("ü", "ß")
    assert credentials("") == "missing"


# Real TLS handshakes: the same app, served by serving.serve_in_loop on 127.0.0.1.

Call = Callable[[str], Awaitable[httpx.Response]]


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def client_context(pki: Pki, *, trust: Path, cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(trust))
    if cert:
        context.load_cert_chain(pki.client_cert, pki.client_key)
    return context


def over_tls(tls: TlsServerConfig, context: ssl.SSLContext, path: str = "/metrics") -> Any:
    """Serve the protected app with `tls`; GET `path` with `context`; return response or error."""

    async def go() -> Any:
        server = await serve_in_loop(Served().app, tls=tls.ssl_context())
        try:
            async with httpx.AsyncClient(verify=context, timeout=5) as client:
                return await client.get(server.url + path, headers=basic("prometheus", PASSWORD))
        except httpx.TransportError as exc:
            return exc
        finally:
            await server.stop(grace=1)

    return asyncio.run(asyncio.wait_for(go(), timeout=20))


def test_tls_serves_a_client_that_trusts_the_ca(pki: Pki) -> None:
    tls = TlsServerConfig(cert_file=pki.server_cert, key_file=pki.server_key)
    response = over_tls(tls, client_context(pki, trust=pki.ca, cert=False))
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 200
    assert response.url.scheme == "https"
    refused = over_tls(tls, client_context(pki, trust=pki.other_ca, cert=False))
    assert isinstance(refused, httpx.ConnectError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused)


def test_tls_refuses_plain_http(pki: Pki) -> None:
    tls = TlsServerConfig(cert_file=pki.server_cert, key_file=pki.server_key)

    async def go() -> Any:
        server = await serve_in_loop(Served().app, tls=tls.ssl_context())
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                return await client.get(server.url.replace("https", "http") + "/metrics")
        except httpx.TransportError as exc:
            return exc
        finally:
            await server.stop(grace=1)

    outcome = asyncio.run(asyncio.wait_for(go(), timeout=20))
    assert not (isinstance(outcome, httpx.Response) and outcome.status_code == 200)


def test_mtls_requires_a_client_certificate_from_the_client_ca(pki: Pki) -> None:
    tls = TlsServerConfig(
        cert_file=pki.server_cert,
        key_file=pki.server_key,
        client_auth_type="RequireAndVerifyClientCert",
        client_ca_file=pki.client_ca,
    )
    good = over_tls(tls, client_context(pki, trust=pki.ca, cert=True))
    assert isinstance(good, httpx.Response), good
    assert good.status_code == 200
    no_cert = over_tls(tls, client_context(pki, trust=pki.ca, cert=False))
    assert isinstance(no_cert, httpx.TransportError)  # TLS 1.3: refused right after the handshake
    stranger = TlsServerConfig(
        cert_file=pki.server_cert,
        key_file=pki.server_key,
        client_auth_type="RequireAndVerifyClientCert",
        client_ca_file=pki.other_ca,  # the client's certificate is not from this CA
    )
    untrusted = over_tls(stranger, client_context(pki, trust=pki.ca, cert=True))
    assert isinstance(untrusted, httpx.TransportError)


def test_verify_client_cert_if_given_lets_clients_without_one_in(pki: Pki) -> None:
    tls = TlsServerConfig(
        cert_file=pki.server_cert,
        key_file=pki.server_key,
        client_auth_type="VerifyClientCertIfGiven",
        client_ca_file=pki.client_ca,
    )
    for cert in (False, True):
        response = over_tls(tls, client_context(pki, trust=pki.ca, cert=cert))
        assert isinstance(response, httpx.Response), response
        assert response.status_code == 200
