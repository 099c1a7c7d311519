"""A changed web config file applies while serving: users at once, certificates at the handshake."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import ssl
from pathlib import Path

import bcrypt
import httpx
import pytest
import trustme
from prometheus_client import CollectorRegistry

from exporter.poll.health import Health
from exporter.web.app import create_app
from exporter.web.auth import protect
from exporter.web.config import load_web_config
from exporter.web.reload import LiveWebConfig
from exporter.web.server import serve_in_loop
from tests.unit.fakeclock import FakeClock

HASHES = {name: bcrypt.hashpw(name.encode(), bcrypt.gensalt(rounds=4)).decode() for name in "ab"}


def auth(user: str) -> dict[str, str]:
    """Basic credentials whose password is the user name (see HASHES)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{user}".encode()).decode()}


def write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))


def users_yaml(*names: str) -> str:
    if not names:
        return "{}\n"
    return "basic_auth_users:\n" + "".join(f"  {n}: '{HASHES[n]}'\n" for n in names)


class Reloading:
    """The exporter's app behind a live web config, driven by a fake clock."""

    def __init__(self, path: Path) -> None:
        self.clock = FakeClock(0)
        self.live = LiveWebConfig(load_web_config(str(path)), clock=self.clock)
        app = create_app(CollectorRegistry(), Health(15), self.clock)
        self.app = protect(app, self.live, health_without_auth=False, on_failure=lambda _r: None)

    def status(self, user: str | None) -> int:
        async def go() -> int:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
                response = await client.get("/metrics", headers=auth(user) if user else None)
                return response.status_code

        return asyncio.run(go())


def test_users_added_changed_and_removed_apply_to_the_next_request(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    write(path, users_yaml(), 1_000)
    served = Reloading(path)
    assert served.status(None) == 200  # a file without users: no auth
    write(path, users_yaml("a"), 2_000)
    assert served.status(None) == 200  # not looked at again yet
    served.clock.advance(1)
    assert served.status(None) == 401
    assert served.status("a") == 200
    write(path, users_yaml("b"), 3_000)
    served.clock.advance(1)
    assert (served.status("a"), served.status("b")) == (401, 200)
    write(path, users_yaml(), 4_000)
    served.clock.advance(1)
    assert served.status(None) == 200


def test_an_invalid_change_keeps_the_config_in_force(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "web.yml"
    write(path, users_yaml("a"), 1_000)
    served = Reloading(path)
    write(path, "basic_auth_users: {a: plain-password}\n", 2_000)
    served.clock.advance(1)
    with caplog.at_level(logging.ERROR):
        assert served.status("a") == 200
    assert "is not valid; the one in force stays" in caplog.text
    assert "plain-password" not in caplog.text
    write(path, users_yaml("b"), 3_000)
    served.clock.advance(1)
    assert served.status("b") == 200


def test_tls_settings_that_need_a_restart_are_only_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    tls = "tls_server_config: {cert_file: cert.pem, key_file: key.pem, min_version: TLS12}\n"
    path = tmp_path / "web.yml"
    write(path, tls, 1_000)
    clock = FakeClock(0)
    live = LiveWebConfig(load_web_config(str(path)), clock=clock)
    write(path, tls.replace("TLS12", "TLS13") + users_yaml("a"), 2_000)
    clock.advance(5)
    with caplog.at_level(logging.WARNING):
        assert live.refresh()
    assert "min_version changed; restart to apply that" in caplog.text
    assert live.web.tls is not None
    assert live.web.tls.min_version == "TLS12"
    assert set(live.web.users) == {"a"}


def peer_certificate(live: LiveWebConfig, ca: trustme.CA) -> bytes:
    """Handshake with a server listening with `live`'s context; return the certificate it showed."""
    context = ssl.create_default_context()
    ca.configure_trust(context)

    async def go() -> bytes:
        app = create_app(CollectorRegistry(), Health(15), FakeClock())
        server = await serve_in_loop(app, tls=live.server_context)
        try:
            async with httpx.AsyncClient(verify=context, timeout=5) as client:
                response = await client.get(server.url + "/healthz")
                stream = response.extensions["network_stream"]
                return bytes(stream.get_extra_info("ssl_object").getpeercert(binary_form=True))
        finally:
            await server.stop(grace=1)

    return asyncio.run(asyncio.wait_for(go(), timeout=20))


def test_a_renewed_certificate_is_served_from_the_next_handshake(tmp_path: Path) -> None:
    ca = trustme.CA()
    first, second = ca.issue_cert("127.0.0.1"), ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    first.cert_chain_pems[0].write_to_path(str(cert))
    first.private_key_pem.write_to_path(str(key))
    path = tmp_path / "web.yml"
    write(path, "tls_server_config: {cert_file: cert.pem, key_file: key.pem}\n", 1_000)
    clock = FakeClock(0)
    live = LiveWebConfig(load_web_config(str(path)), clock=clock)
    shown = peer_certificate(live, ca)
    assert shown == ssl.PEM_cert_to_DER_cert(first.cert_chain_pems[0].bytes().decode())
    second.cert_chain_pems[0].write_to_path(str(cert))  # as cert-manager renews a secret
    second.private_key_pem.write_to_path(str(key))
    clock.advance(1)
    shown = peer_certificate(live, ca)
    assert shown == ssl.PEM_cert_to_DER_cert(second.cert_chain_pems[0].bytes().decode())
