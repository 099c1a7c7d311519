"""A local OTLP/HTTP trace receiver for benchmarks: decodes each request, counts, answers 200.

It runs as its own process, so decoding never competes with the exporter for the GIL:

    python -m bench.receiver      # prints `ready http://127.0.0.1:<port>/v1/traces`

`GET /count` answers the number of spans received so far; `running()` starts one for a bench.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bench.common import Http1Connection, child, free_port, response

_OK = ExportTraceServiceResponse().SerializeToString()


class _Connection(Http1Connection):
    spans = 0

    def answer(self, head: bytes, body: bytes) -> bytes:
        """Count the spans of an export request; answer `GET /count` with the count so far."""
        if head.startswith(b"get /count"):
            return response(200, str(_Connection.spans).encode(), "text/plain")
        if not head.startswith(b"post /v1/traces "):
            return response(404, b"not an OTLP traces request", "text/plain")
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                _Connection.spans += len(scope.spans)
        return response(200, _OK, "application/x-protobuf")


@dataclass(frozen=True)
class Running:
    """A receiver process: where to send spans, and how many it has decoded."""

    url: str  # the traces URL (`.../v1/traces`)

    def received(self) -> int:
        """Return how many spans the receiver decoded so far."""
        count_url = self.url.removesuffix("/v1/traces") + "/count"
        with urllib.request.urlopen(count_url, timeout=5) as answer:
            return int(answer.read())


@contextlib.contextmanager
def running() -> Iterator[Running]:
    """Run a receiver process until the block ends."""
    with child("bench.receiver") as ready:
        yield Running(ready.split()[1])


async def serve() -> None:
    """Receive spans on a free port until the process is killed."""
    port = free_port()
    server = await asyncio.get_running_loop().create_server(_Connection, "127.0.0.1", port)
    print(f"ready http://127.0.0.1:{port}/v1/traces", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve())
    sys.exit(0)
