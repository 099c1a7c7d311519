"""A local OTLP/HTTP trace receiver for benchmarks: decodes each request, counts, answers 200.

It runs as its own process, so decoding never competes with the exporter for the GIL:

    python -m bench.receiver      # prints `ready http://127.0.0.1:<port>/v1/traces`

`GET /count` answers the number of spans received so far.
"""

from __future__ import annotations

import asyncio
import sys

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bench.common import free_port

_OK = ExportTraceServiceResponse().SerializeToString()


def _answer(body: bytes, content_type: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\ncontent-type: {content_type.decode()}\r\n"
    return (head + f"content-length: {len(body)}\r\n\r\n").encode() + body


class _Connection(asyncio.Protocol):
    spans = 0

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if len(self.buffer) < end + 4 + length:
                return  # the body is still arriving
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(self._handle(head, body))

    def _handle(self, head: bytes, body: bytes) -> bytes:
        if head.startswith(b"get /count"):
            return _answer(str(_Connection.spans).encode(), b"text/plain")
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                _Connection.spans += len(scope.spans)
        return _answer(_OK, b"application/x-protobuf")


async def serve() -> None:
    """Receive spans on a free port until the process is killed."""
    port = free_port()
    server = await asyncio.get_running_loop().create_server(_Connection, "127.0.0.1", port)
    print(f"ready http://127.0.0.1:{port}/v1/traces", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve())
    sys.exit(0)
