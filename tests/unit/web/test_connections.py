"""The web listener's bounds, on a real socket: idle and dripping connections are closed."""

from __future__ import annotations

import asyncio

from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from exporter.web.server import serve_in_loop


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("hello\n")(scope, receive, send)


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Say whether the server closes the connection (EOF) before the test gives up."""
    try:
        await asyncio.wait_for(reader.read(), timeout=5)
    except TimeoutError:
        return False
    return True


def test_idle_and_dripping_connections_are_closed_while_requests_are_served() -> None:
    async def go() -> tuple[bool, bool, bytes]:
        server = await serve_in_loop(hello, header_timeout_s=0.2)
        try:
            idle_reader, idle = await asyncio.open_connection(server.host, server.port)
            drip_reader, drip = await asyncio.open_connection(server.host, server.port)
            drip.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), timeout=5)
            closed = await closed_by_server(idle_reader), await closed_by_server(drip_reader)
            for w in (idle, drip, writer):
                w.close()
            return *closed, answer
        finally:
            await server.stop()

    idle_closed, drip_closed, answer = asyncio.run(go())
    assert answer.startswith(b"HTTP/1.1 200")
    assert idle_closed  # was held open forever: 19,990 of them exhausted the fds
    assert drip_closed


def test_connections_past_the_cap_are_closed_at_once() -> None:
    async def go() -> list[bool]:
        server = await serve_in_loop(hello, header_timeout_s=60, max_connections=2)
        try:
            opened = [await asyncio.open_connection(server.host, server.port) for _ in range(3)]
            third = await closed_by_server(opened[2][0])
            reader, writer = opened[0]
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            served = (await asyncio.wait_for(reader.read(), timeout=5)).startswith(b"HTTP/1.1 200")
            for _reader, w in opened:
                w.close()
            return [third, served]
        finally:
            await server.stop()

    assert asyncio.run(go()) == [True, True]
