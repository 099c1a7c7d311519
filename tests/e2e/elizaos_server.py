"""A real ElizaOS 1.7.2 server as a test process, and the calls a user of its public API makes.

`tests/e2e/elizaos/server.mjs` runs `@elizaos/server` with `@elizaos/plugin-sql` (PGlite in the
test's temp dir) and `@elizaos/plugin-bootstrap`, on 127.0.0.1 only, with one agent whose models
answer canned replies; markers in a message steer them (`FAIL_MODEL`, `PLEASE_MUTE`,
`HOLD_MODEL-<id>`: see server.mjs). The npm packages are installed by `.ci/run`
(`npm ci --prefix tests/e2e/elizaos`); a missing install fails the test with that command, never
skips it.

    with ElizaServer.start(tmp_path) as eliza:
        session = eliza.session()
        eliza.send(session, "hello")          # waits for the agent's reply (HTTP transport)
        eliza.superseded(eliza.session())     # leaves a run the server never ends
        runs = eliza.runs()                   # GET /api/agents/{id}/runs, as the exporter reads it
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Self

import httpx

from tests.e2e.processes import CliProcess, StopsOnExit, free_port, wait_until

HERE = Path(__file__).resolve().parent / "elizaos"
TOKEN = "e2e-eliza-token-5d41402abc4b2a76"
START_TIMEOUT_S = 120.0
INSTALL_HINT = "run `npm ci --prefix tests/e2e/elizaos` (bash .ci/run does)"


def node() -> str:
    """Return the path of `node`; fail (never skip) when it is missing."""
    found = shutil.which("node")
    assert found, "node is not installed: the real ElizaOS server needs Node.js 20"
    assert (HERE / "node_modules" / "@elizaos" / "server").is_dir(), INSTALL_HINT
    return found


class ElizaServer(StopsOnExit):
    """One running ElizaOS server with its agent, and an HTTP client for its API."""

    def __init__(self, process: CliProcess, base_url: str, agent_id: str) -> None:
        self.process = process
        self.base_url = base_url
        self.agent_id = agent_id
        self.user_id = str(uuid.uuid4())
        self.http = httpx.Client(base_url=base_url, headers={"X-API-KEY": TOKEN}, timeout=30)

    @classmethod
    def start(cls, workdir: Path) -> Self:
        """Start the server with a fresh PGlite data dir under `workdir`; wait until it serves."""
        port = free_port()
        argv = [node(), str(HERE / "server.mjs"), str(port), str(workdir / "eliza-data")]
        env = {"ELIZA_SERVER_AUTH_TOKEN": TOKEN, "LOG_LEVEL": "warn", "TELEMETRY_DISABLED": "1"}
        process = CliProcess.spawn("elizaos", argv, workdir, env)
        try:
            agent_id = process.wait_for_output(r"READY (\S+)", START_TIMEOUT_S)[1]
        except BaseException:
            process.stop()
            raise
        return cls(process, f"http://127.0.0.1:{port}", agent_id)

    def stop(self) -> int | None:
        """Close the client and stop the server (SIGTERM, then SIGKILL)."""
        self.http.close()
        return self.process.stop()

    def session(self, user_id: str | None = None) -> str:
        """Open a messaging session between a user (the test's) and the agent; return its id.

        With the agent's own id as the user, every message ends its run `self` at once.
        """
        body = {"agentId": self.agent_id, "userId": user_id or self.user_id}
        response = self.http.post("/api/messaging/sessions", json=body)
        response.raise_for_status()
        return str(response.json()["sessionId"])

    def send(self, session: str, text: str) -> bool:
        """Send `text`, wait for the agent to handle it; say whether the server said success."""
        body = {"content": text, "transport": "http"}
        response = self.http.post(f"/api/messaging/sessions/{session}/messages", json=body)
        return response.status_code < 400 and bool(response.json().get("success"))

    def superseded(self, session: str) -> None:
        """Leave one run that never ends: a reply superseded by a newer message in its room.

        The first message's model call waits (HOLD_MODEL) until the second message's call; by
        then the second one is the room's newest, so ElizaOS discards the first reply and never
        writes its RUN_ENDED. No sleep decides it: the second is sent once the first is running.
        """
        marker = f"HOLD_MODEL-{uuid.uuid4().hex[:12]}"
        known = {run["runId"] for run in self.runs()}
        first = threading.Thread(target=self.send, args=(session, f"tell me a story {marker}"))
        first.start()
        wait_until(
            lambda: {run["runId"] for run in self.runs()} - known,
            timeout=START_TIMEOUT_S,
            what="the first message's run to start",
        )
        self.send(session, f"never mind the story {marker}")
        first.join(START_TIMEOUT_S)
        assert not first.is_alive(), "the superseded message got no answer"

    def runs(self) -> list[dict[str, Any]]:
        """Return the agent's runs as the list endpoint shows them (`to` skips its 15 s cache)."""
        params = {"limit": 100, "to": int(time.time() * 1000) + 60_000}
        response = self.http.get(f"/api/agents/{self.agent_id}/runs", params=params)
        response.raise_for_status()
        return list(response.json()["data"]["runs"])

    def detail(self, run_id: str) -> dict[str, Any]:
        """Return one run's detail (summary and events)."""
        response = self.http.get(f"/api/agents/{self.agent_id}/runs/{run_id}")
        response.raise_for_status()
        return dict(response.json()["data"])
