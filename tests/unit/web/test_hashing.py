"""Bounded bcrypt work: a wrong-password flood neither queues a valid scrape nor reveals users."""

from __future__ import annotations

import asyncio
import base64
import threading

import bcrypt
import httpx
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from exporter.web.auth import BasicAuth, CredentialCheck
from exporter.web.hashing import MAX_WAITING, PER_CLIENT, cost

PASSWORD = "correct-horse-battery"


class Recording(CredentialCheck):
    """A credential check that notes every bcrypt check it runs, and can hold them at a gate."""

    def __init__(self, users: dict[str, bytes]) -> None:
        super().__init__(users)
        self.checked: list[tuple[str, bytes]] = []
        self.gate = threading.Event()
        self.gate.set()

    def _bcrypt(self, password: str, hashed: bytes) -> bool:
        self.gate.wait(10)
        self.checked.append((password, hashed))
        return super()._bcrypt(password, hashed)


def htpasswd_users(rounds: int) -> dict[str, bytes]:
    return {"prometheus": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=rounds))}


def test_an_unknown_user_costs_what_a_wrong_password_costs() -> None:
    check = Recording(htpasswd_users(rounds=5))  # the `htpasswd -nbB` default
    asyncio.run(check.verify("prometheus", "wrong"))
    asyncio.run(check.verify("mallory", "wrong"))
    assert [cost(hashed) for _password, hashed in check.checked] == [5, 5]


def test_without_users_the_dummy_keeps_the_default_cost() -> None:
    assert cost(CredentialCheck({}).dummy_hash()) == 10


async def flood_then_scrape(check: Recording, wrong: int, client: str) -> list[bool | None]:
    """Send `wrong` concurrent wrong passwords from one address, then a valid one from another."""
    check.gate.clear()  # hold the checks, so they all pile up
    floods = [
        asyncio.create_task(check.verify("prometheus", f"guess-{i}", client=client))
        for i in range(wrong)
    ]
    scrape = asyncio.create_task(check.verify("prometheus", PASSWORD, client="10.0.0.9"))
    await asyncio.sleep(0.01)
    check.gate.set()
    return [*await asyncio.gather(*floods), await scrape]


def test_a_wrong_password_flood_from_one_address_cannot_queue_a_valid_scrape() -> None:
    check = Recording(htpasswd_users(rounds=4))
    answers = asyncio.run(flood_then_scrape(check, wrong=200, client="6.6.6.6"))
    assert answers[-1] is True  # the valid scrape is let in
    assert answers[:-1].count(None) == 200 - PER_CLIENT  # the rest of the flood: busy, no work
    passwords = [password for password, _hashed in check.checked]
    assert len(passwords) == PER_CLIENT + 1  # 3 bcrypt checks, not 201
    assert passwords.index(PASSWORD) <= PER_CLIENT  # at most the flood's own places before it
    assert check.bcrypt_checks == PER_CLIENT + 1


def test_many_flooding_addresses_still_leave_a_bounded_queue() -> None:
    check = Recording(htpasswd_users(rounds=4))

    async def go() -> list[bool | None]:
        check.gate.clear()
        floods = [
            asyncio.create_task(check.verify("prometheus", f"g{i}", client=f"6.6.{i}.6"))
            for i in range(100)
        ]
        await asyncio.sleep(0.01)
        check.gate.set()
        return list(await asyncio.gather(*floods))

    answers = asyncio.run(go())
    assert check.bcrypt_checks == MAX_WAITING
    assert answers.count(None) == 100 - MAX_WAITING


def test_a_verified_password_is_served_from_the_cache_during_a_flood() -> None:
    check = Recording(htpasswd_users(rounds=4))
    assert asyncio.run(check.verify("prometheus", PASSWORD, client="10.0.0.9")) is True
    before = check.bcrypt_checks

    async def go() -> list[bool | None]:
        check.gate.clear()
        floods = [
            asyncio.create_task(check.verify("prometheus", f"g{i}", client=f"6.6.{i}.6"))
            for i in range(100)
        ]
        answer = await check.verify("prometheus", PASSWORD, client="10.0.0.9")  # no bcrypt
        check.gate.set()
        await asyncio.gather(*floods)
        return [answer]

    assert asyncio.run(go()) == [True]
    assert check.bcrypt_checks - before == MAX_WAITING  # the flood's places only


def test_a_check_without_a_place_is_answered_503_at_once_and_counted() -> None:
    reasons: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("ok")(scope, receive, send)

    auth = BasicAuth(app, htpasswd_users(rounds=4), on_failure=reasons.append)
    check = Recording(auth.check.users)
    auth.check = check

    async def go() -> list[httpx.Response]:
        check.gate.clear()
        transport = httpx.ASGITransport(app=auth)  # one client address for every request
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            sent = [
                asyncio.create_task(client.get("/metrics", headers=basic(f"guess-{i}")))
                for i in range(PER_CLIENT + 3)
            ]
            await asyncio.sleep(0.01)
            check.gate.set()
            return list(await asyncio.gather(*sent))

    codes = sorted(response.status_code for response in asyncio.run(go()))
    assert codes == [401] * PER_CLIENT + [503] * 3
    assert reasons.count("busy") == 3
    assert check.bcrypt_checks == PER_CLIENT


def basic(password: str) -> dict[str, str]:
    token = base64.b64encode(f"prometheus:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}
