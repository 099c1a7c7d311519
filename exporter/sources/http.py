"""HTTP plumbing shared by every source: auth, timeouts, retries and error translation.

Every httpx exception and every non-2xx answer leaves this module as an `exporter.errors`
`SourceError`; a body that is not JSON leaves as `MalformedPageError`. Credentials come from an
`httpx.Auth` (see `sources.auth`); redirects and the body size cap are `sources.transfer`'s.
`timeout_s` bounds each network step (httpx) and also the whole exchange, redirects and body
included: an upstream dripping a byte under the read timeout still ends as a timeout.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from exporter import __version__
from exporter.errors import (
    AuthError,
    ClientError,
    InvalidUrlError,
    MalformedPageError,
    NotFoundError,
    RateLimitedError,
    RetryableError,
    ServerError,
    SourceError,
    TransportError,
)
from exporter.logs import redact
from exporter.sources import decoding, transfer
from exporter.sources.budget import UNLIMITED, Budget, Priority
from exporter.sources.fields import printable

log = logging.getLogger(__name__)

ResponseHook = Callable[[str, str], None]
"""Called with (endpoint, status code or error reason) after every request."""

Sleep = Callable[[float], Awaitable[None]]

_MAX_BODY_TEXT = 200
_SCAN_CHARS = 8192  # of an error body, masked before the cut (any secret fits in it)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry a retryable failure within one poll."""

    attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 10.0
    deadline_s: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Return the full-jitter backoff before retry number `attempt` (1-based)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return rng.uniform(0, ceiling)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Return the wait a `Retry-After` header asks for, in seconds (delta or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _error_text(response: httpx.Response) -> str:
    """Return the error body's message, secrets masked before it is cut (a cut hides them)."""
    return redact(_error_message(response)[:_SCAN_CHARS])[:_MAX_BODY_TEXT].strip()


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return response.text
    if isinstance(body, dict):
        message = body.get("error") or body.get("message")
        if isinstance(message, dict):
            message = message.get("message")
        if message:
            return str(message)
    return str(body)


def translate_status(response: httpx.Response, now: float) -> SourceError:
    """Return the error that a non-2xx `response` stands for."""
    code = response.status_code
    text = redact(f"HTTP {code} from {response.request.url.path}: {_error_text(response)}")
    if code == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        return RateLimitedError(text, retry_after=retry_after)
    if code in (401, 403):
        return AuthError(text, status_code=code)
    if code == 404:
        return NotFoundError(text, status_code=code)
    if code >= 500:
        return ServerError(text, status_code=code)
    return ClientError(text, status_code=code)


class HttpClient:
    """A JSON-over-HTTP client for one source, with retries and error translation."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        timeout_s: float,
        on_response: ResponseHook,
        auth: httpx.Auth | None = None,
        verify: ssl.SSLContext | bool = True,
        max_response_bytes: int = 16 * 1024 * 1024,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        budget: Budget = UNLIMITED,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={
                "User-Agent": f"agent-runs-exporter/{__version__}",
                "Accept-Encoding": decoding.ACCEPT_ENCODING,  # what transfer.fetch can decode
                **headers,
            },
            timeout=timeout_s,
            transport=transport,
            follow_redirects=False,  # transfer.fetch follows same-origin redirects only
            auth=auth,
            verify=verify,
        )
        self._max_bytes = max_response_bytes
        self._timeout_s = timeout_s
        self._on_response = on_response
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._budget = budget

    async def get_json(
        self,
        path: str,
        *,
        endpoint: str,
        params: Mapping[str, Any],
        priority: Priority = Priority.LIST,
    ) -> Any:
        """GET `path` and return its decoded JSON body, retrying retryable failures.

        Every attempt first waits for a token of the source's request budget at `priority`.
        """
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._spend(priority, started)
                return await self._get_once(path, endpoint=endpoint, params=params)
            except RetryableError as exc:
                wait = self._next_wait(exc, attempt, started)
                if wait is None:
                    raise
                log.debug("retrying %s in %.2fs after: %s", endpoint, wait, exc)
                await self._sleep(wait)

    def _next_wait(self, exc: RetryableError, attempt: int, started: float) -> float | None:
        if attempt >= self._retry.attempts:
            return None
        wait = self._retry.delay(attempt, self._rng)
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            wait = exc.retry_after  # the upstream's word wins over our backoff
        if self._clock() - started + wait > self._retry.deadline_s:
            return None
        return wait

    async def _spend(self, priority: Priority, started: float) -> None:
        """Wait for a budget token, or raise `RateLimitedError` if it comes past the deadline."""
        while (wait := self._budget.wait_for(priority)) > 0:
            if self._clock() - started + wait > self._retry.deadline_s:
                raise RateLimitedError(
                    f"request budget exhausted: next request allowed in {wait:.1f}s",
                    retry_after=wait,
                    budget=True,
                )
            self._budget.waited(wait)
            await self._sleep(wait)

    async def _get_once(self, path: str, *, endpoint: str, params: Mapping[str, Any]) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        try:
            request = self._client.build_request("GET", path, params=query)
            async with asyncio.timeout(self._timeout_s):  # the whole exchange, body included
                response = await transfer.fetch(self._client, request, max_bytes=self._max_bytes)
        except httpx.InvalidURL as exc:  # an id from the upstream or the config: nothing sent
            raise InvalidUrlError(f"cannot form a URL for {printable(path)[:300]}") from exc
        except SourceError as exc:  # a refused redirect or an oversized body
            self._on_response(endpoint, str(exc.status_code))
            raise
        except (httpx.TimeoutException, TimeoutError) as exc:
            self._on_response(endpoint, "timeout")
            raise TransportError(f"timed out requesting {path}", timeout=True) from exc
        except httpx.TransportError as exc:
            self._on_response(endpoint, "connect")
            raise TransportError(f"cannot reach upstream for {path}: {exc}") from exc
        self._on_response(endpoint, str(response.status_code))
        if not response.is_success:
            error = translate_status(response, self._clock())
            if isinstance(error, RateLimitedError) and error.retry_after is not None:
                self._budget.pause(error.retry_after)  # Retry-After wins over the bucket
            raise error
        try:
            return response.json()
        except (ValueError, RecursionError) as exc:
            raise MalformedPageError(f"{path} answered a body that is not JSON") from exc

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
