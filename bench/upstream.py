"""A local Conduit upstream that answers instantly: every page is rendered before it starts.

The runs are the simulator's (`exporter.simulator`), so their fields look like Conduit's, with
exactly `steps` tool steps each and every run already terminal. Each agent has `pages` list pages
of `page_size` runs, newest first, chained by `next_cursor`, and every run has its detail page.
Serving is a bare asyncio HTTP/1.1 loop over a dict of finished responses, so the upstream costs
the benchmark as little as a server can.

    python -m bench.upstream --port 8099 --agents 4 --pages 100 --page-size 100 --steps 5

prints `ready <runs>` on stdout once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import urllib.parse
from dataclasses import replace
from typing import Any

from bench.common import Http1Connection, response
from exporter.simulator.conduit_runs import ConduitFlavor
from exporter.simulator.payloads import run_detail, run_summary
from exporter.simulator.records import Agent, SimRun
from exporter.simulator.settings import SimulatorSettings

RUN_SPACING_MS = 50  # one run every 50 ms per agent, so a page spans 5 s
_NOT_FOUND = response(404, b'{"error":{"message":"not found"}}')


def agent_ids(count: int) -> list[str]:
    """Return the ids of the upstream's agents."""
    return [f"agbench{index:04d}" for index in range(count)]


def render(agents: int, pages: int, page_size: int, steps: int, now_ms: int) -> dict[str, bytes]:
    """Render every list and detail response, keyed by path and cursor (`path?cursor`)."""
    flavor = ConduitFlavor(SimulatorSettings(seed=11, workspace_id="j57bench"))
    rng = random.Random(11)
    answers: dict[str, bytes] = {}
    newest_ms = now_ms - 2 * 3600 * 1000  # old enough that every run has ended
    for agent_id in agent_ids(agents):
        agent = Agent(agent_id, agent_id, "bench agent", "j57bench", "trbench", False, 0)
        runs: list[SimRun] = []
        for index in range(pages * page_size):
            at = (newest_ms - index * RUN_SPACING_MS) / 1000
            runs.append(
                replace(flavor.new_run(rng, agent, at, None), tool_steps=steps, tool_nulls=0)
            )
        path = f"/v1/agents/{agent_id}/runs"
        for page in range(pages):
            chunk = runs[page * page_size : (page + 1) * page_size]
            more = page + 1 < pages
            body = {
                "data": [run_summary(run, now_ms) for run in chunk],
                "next_cursor": f"c{page + 1}" if more else None,
                "has_more": more,
            }
            answers[f"{path}?{'' if page == 0 else f'c{page}'}"] = _response(200, body)
        for run in runs:
            answers[f"{path}/{run.id}?"] = _response(200, {"data": run_detail(run, now_ms)})
    return answers


def _response(status: int, body: Any) -> bytes:
    return response(status, json.dumps(body).encode())


def key_of(target: str) -> str:
    """Return the answer key of a request target: its path and its `cursor` parameter."""
    path, _, query = target.partition("?")
    cursor = urllib.parse.parse_qs(query).get("cursor", [""])[0]
    return f"{path}?{cursor}"


class _Connection(Http1Connection):
    """One keep-alive connection: answer each request from the dict."""

    def __init__(self, answers: dict[str, bytes]) -> None:
        super().__init__()
        self.answers = answers

    def answer(self, head: bytes, body: bytes) -> bytes:
        """Return the pre-rendered answer to the request's path and cursor, or a 404."""
        target = head.split(b" ", 2)[1].decode()
        return self.answers.get(key_of(target)) or _NOT_FOUND


async def serve(port: int, answers: dict[str, bytes]) -> None:
    """Answer requests on 127.0.0.1:`port` until the process is killed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(answers), "127.0.0.1", port)
    runs = sum(1 for key in answers if key.count("/") == 5)
    print(f"ready {runs}", flush=True)
    await server.serve_forever()


def main(argv: list[str]) -> int:
    """Render the pages and serve them."""
    args = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    args.add_argument("--port", type=int, required=True)
    args.add_argument("--agents", type=int, default=4)
    args.add_argument("--pages", type=int, default=100)
    args.add_argument("--page-size", type=int, default=100)
    args.add_argument("--steps", type=int, default=5)
    options = args.parse_args(argv)
    now_ms = int(time.time() * 1000)
    answers = render(options.agents, options.pages, options.page_size, options.steps, now_ms)
    asyncio.run(serve(options.port, answers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
