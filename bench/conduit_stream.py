"""A Conduit upstream that derives every run from its index and the simulated time, storing nothing.

Run `i` (0 <= i < total) belongs to agent `i % agents` and is created `i * 604.8 ms` after `T0`,
so a million runs span one week. Its duration, outcome and tokens come from a hash of `i`:

    97.95 %   1-20 s      2 %   20-120 s      0.05 %   5-10 min      1 in 200,000   2 h (given up)

It is `accepted` for its first second, then `running`, then `completed` (or, 1 in 20, `failed`).
The server speaks real HTTP on 127.0.0.1, one thread per connection:

    GET  /v1/agents                        every agent, one page
    GET  /v1/agents/{id}                   one agent
    GET  /v1/agents/{id}/runs              newest first; the cursor is the next older run's index
    GET  /v1/agents/{id}/runs/{run_id}     one run with a three-step tool_trace
    POST /_bench/clock?t=<epoch seconds>   set the simulated time (bench only)
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

T0_MS = 1_800_000_000_000  # 2027-01-15T08:00:00Z
STEP_TENTHS_MS = 6048  # 604.8 ms between runs: 1,000,000 runs a week
WORKSPACE = "j57bench"
STUCK_S = 7200.0  # longer than any sane lookback: the exporter gives these up
_MASK = (1 << 64) - 1

Payload = dict[str, Any]


def created_ms(index: int) -> int:
    """Return when run `index` is created, in epoch milliseconds."""
    return T0_MS + index * STEP_TENTHS_MS // 10


def created_by(now_ms: int) -> int:
    """Return how many runs exist (are created) at `now_ms`."""
    if now_ms < T0_MS:
        return 0
    count = (now_ms - T0_MS) * 10 // STEP_TENTHS_MS + 1
    while created_ms(count) <= now_ms:
        count += 1
    while count > 0 and created_ms(count - 1) > now_ms:
        count -= 1
    return count


def span_s(total: int) -> float:
    """Return the simulated seconds over which `total` runs are created."""
    return (created_ms(total - 1) - T0_MS) / 1000 if total > 0 else 0.0


def _mix(index: int) -> int:
    """Hash an index to 64 well-mixed bits (splitmix64)."""
    z = (index * 0x9E3779B97F4A7C15 + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def duration_s(index: int) -> float:
    """Return how long run `index` is in flight."""
    h = _mix(index)
    bucket, frac = h % 200_000, (h >> 17) % 1000 / 1000
    if bucket < 1:
        return STUCK_S
    if bucket < 101:
        return 300 + 300 * frac
    if bucket < 4101:
        return 20 + 100 * frac
    return 1 + 19 * frac


def stuck(total: int) -> int:
    """Return how many of the first `total` runs never finish within an hour."""
    return sum(1 for index in range(total) if duration_s(index) >= STUCK_S)


def agent_id(number: int) -> str:
    """Return the id of agent `number`."""
    return f"agbench{number:04d}"


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def phase(index: int, now_ms: int) -> str:
    """Return what run `index` is at `now_ms`: accepted, running or done."""
    age = now_ms - created_ms(index)
    if age >= round(duration_s(index) * 1000):
        return "done"
    return "accepted" if age < 1000 else "running"


def run_payload(index: int, agents: int, now_ms: int) -> Payload:
    """Return run `index` as Conduit lists it at `now_ms`."""
    h = _mix(index)
    created = created_ms(index)
    ends = created + round(duration_s(index) * 1000)
    status = phase(index, now_ms)
    done = status == "done"
    failed = done and (h >> 40) % 20 == 0
    if done:
        status = "failed" if failed else "completed"
    tokens = {"input": 500 + (h >> 8) % 3000, "output": 50 + (h >> 24) % 700} if done else None
    cost = tokens and round(tokens["input"] * 3e-6 + tokens["output"] * 15e-6, 6)
    return {
        "id": f"ar{index:012d}",
        "run_id": f"run_{h & 0xFFFFFFFF:08x}",
        "agent_id": agent_id(index % agents),
        "workspace_id": WORKSPACE,
        "status": status,
        "disposition": ("unresolved" if failed else "resolved") if done else None,
        "contact_id": f"co{h % 50_000:06d}",
        "conversation_id": f"cv{index:012d}",
        "trigger_id": None,
        "error": "tool call timed out" if failed else None,
        "duration_ms": ends - created if done else None,
        "token_usage": tokens,
        "total_cost": cost,
        "trace_id": f"{h:016x}",
        "created_at": _iso(created),
        "completed_at": _iso(ends) if done else None,
    }


def page_indexes(
    agent: int, agents: int, total: int, now_ms: int, *, limit: int, cursor: int | None
) -> tuple[range, int]:
    """Return the indexes of one newest-first page of an agent, and the next cursor (< 0: none)."""
    newest = min(created_by(now_ms), total) - 1
    start = newest - (newest - agent) % agents if cursor is None else cursor
    indexes = range(start, -1, -agents)[:limit]
    return indexes, start - len(indexes) * agents


def detail(index: int, agents: int, now_ms: int) -> Payload:
    """Return run `index` as Conduit's get-run answers it, with its tool trace."""
    run = run_payload(index, agents, now_ms)
    run["tool_trace"] = [
        {"name": name, "input": {"q": f"q{index}"}, "output": {"ok": True}}
        for name in ("search_kb", "lookup_order", "send_reply")
    ]
    return {"data": run}


def _json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class EncodedRuns:
    """Runs encoded as JSON by (index, phase), the newest `size` kept: re-reads cost no encoding."""

    def __init__(self, agents: int, size: int = 50_000) -> None:
        self.agents = agents
        self.size = size
        self._cache: dict[tuple[int, str], bytes] = {}

    def get(self, index: int, now_ms: int) -> bytes:
        """Return run `index` at `now_ms` as JSON."""
        key = (index, phase(index, now_ms))
        encoded = self._cache.get(key)
        if encoded is None:
            encoded = self._cache[key] = _json(run_payload(index, self.agents, now_ms))
            if len(self._cache) > self.size:
                del self._cache[next(iter(self._cache))]
        return encoded


class Upstream:
    """The simulated Conduit API: `agents` agents, `total` runs, time set by the bench."""

    def __init__(self, agents: int, total: int) -> None:
        self.agents = agents
        self.total = total
        self.now_ms = T0_MS
        self.requests = 0
        self._numbers = {agent_id(n): n for n in range(agents)}
        self._runs = EncodedRuns(agents)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def answer(self, method: str, target: str) -> tuple[int, bytes]:
        """Route one request; return its status and JSON body."""
        parts = urlsplit(target)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        path = parts.path.strip("/").split("/")
        with self._lock:  # one request at a time: the cache and the clock are shared
            self.requests += 1
            if method == "POST" and path == ["_bench", "clock"]:
                self.now_ms = round(float(query["t"]) * 1000)
                return 200, _json({"now_ms": self.now_ms})
            if method != "GET" or path[:2] != ["v1", "agents"]:
                return 404, _json({"error": "Not found"})
            status, body = self._agents(path[2:], query)
        return status, body if isinstance(body, bytes) else _json(body)

    def _agents(self, rest: list[str], query: dict[str, str]) -> tuple[int, Payload | bytes]:
        if not rest:
            ids = [agent_id(n) for n in range(self.agents)]
            data = [{"id": i, "name": f"Bench agent {i[-4:]}"} for i in ids]
            return 200, {"data": data, "next_cursor": None, "has_more": False}
        number = self._numbers.get(rest[0])
        if number is None:
            return 404, {"error": "Agent not found"}
        if len(rest) == 1:
            return 200, {"data": {"id": rest[0], "name": f"Bench agent {number:04d}"}}
        if len(rest) == 2 and rest[1] == "runs":
            limit = min(100, max(1, int(query.get("limit", "20"))))
            cursor = int(query["cursor"]) if query.get("cursor") else None
            return 200, self._list(number, limit, cursor)
        if len(rest) == 3 and rest[1] == "runs" and rest[2].startswith("ar"):
            return 200, detail(int(rest[2][2:]), self.agents, self.now_ms)
        return 404, {"error": "Not found"}

    def _list(self, agent: int, limit: int, cursor: int | None) -> bytes:
        now = self.now_ms
        indexes, following = page_indexes(
            agent, self.agents, self.total, now, limit=limit, cursor=cursor
        )
        more = following >= 0
        runs = b",".join(self._runs.get(index, now) for index in indexes)
        tail = _json({"next_cursor": str(following) if more else None, "has_more": more})
        return b'{"data":[' + runs + b"]," + tail[1:]

    def start(self) -> str:
        """Serve on a free port of 127.0.0.1 in a background thread; return the base URL."""
        upstream = self

        class Handler(_Handler):
            api = upstream

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="upstream", daemon=True).start()
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Handler(BaseHTTPRequestHandler):
    """Answer each request from `api`, keeping the connection alive."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    api: Upstream

    def do_GET(self) -> None:
        """Answer a GET."""
        self._reply(*self.api.answer("GET", self.path))

    def do_POST(self) -> None:
        """Answer a POST (the bench's clock control)."""
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._reply(*self.api.answer("POST", self.path))

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing: a million requests would drown the figures."""
