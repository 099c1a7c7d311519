"""The exporter's error hierarchy: every upstream failure is translated into one of these.

    ExporterError
    ├── ConfigError               bad configuration; lists every problem
    ├── StateError                the state file could not be written
    ├── ParseError                one payload item does not fit the shape     reason=malformed_item
    │   └── InvalidIdError        an item's id cannot be part of a URL        reason=invalid_id
    └── SourceError               a request to an upstream failed (.reason is a metric label)
        ├── RetryableError        worth retrying later in this or the next poll
        │   ├── TransportError    timeout, connection refused or reset        reason=timeout|connect
        │   ├── ServerError       HTTP 5xx                                    reason=http_5xx
        │   └── RateLimitedError  HTTP 429 (or our own request budget, .budget) reason=rate_limited
        └── PermanentError        retrying the same request will not help
            ├── AuthError         HTTP 401 / 403                 reason=unauthorized|forbidden
            ├── NotFoundError     HTTP 404                                    reason=not_found
            ├── ClientError       any other HTTP 4xx                          reason=http_4xx
            ├── MalformedPageError  a body that is not the documented shape reason=malformed_page
            ├── RedirectError     a redirect to another origin, not followed  reason=redirect
            ├── ResponseTooLargeError  a body over the size cap, not read     reason=too_large
            └── InvalidUrlError   no URL can be formed from an id           reason=invalid_id

Callers never see a raw httpx exception. This module imports nothing from the package.
"""

from __future__ import annotations

from dataclasses import dataclass


class ExporterError(Exception):
    """Base of every error the exporter raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in the configuration: where it is and why it is wrong."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ConfigError(ExporterError):
    """The configuration has one or more problems; `problems` lists all of them."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class StateError(ExporterError):
    """The state store failed to commit; the exporter goes on from memory."""


class ParseError(ExporterError):
    """One payload item cannot be read as a run; the item is skipped and counted."""

    reason = "malformed_item"


class InvalidIdError(ParseError):
    """An item's id cannot be part of a URL (a control character, '/', '?', '#' or '\\')."""

    reason = "invalid_id"


class SourceError(ExporterError):
    """A request to an upstream platform failed."""

    reason = "error"
    retryable = False

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RetryableError(SourceError):
    """A failure that may go away by itself."""

    retryable = True


class TransportError(RetryableError):
    """The request did not get an HTTP answer (timeout, refused, reset)."""

    reason = "connect"

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.reason = "timeout" if timeout else "connect"


class ServerError(RetryableError):
    """The upstream answered with a 5xx status."""

    reason = "http_5xx"


class RateLimitedError(RetryableError):
    """The upstream answered 429; `retry_after` is the wait it asked for, in seconds.

    With `budget` set, no request was sent: the source's own request budget has no token
    before the retry deadline.
    """

    reason = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None, budget: bool = False) -> None:
        super().__init__(message, status_code=None if budget else 429)
        self.retry_after = retry_after
        self.budget = budget


class PermanentError(SourceError):
    """A failure that retrying the same request will not fix."""


class AuthError(PermanentError):
    """The upstream refused the credentials (401) or the access (403)."""

    reason = "unauthorized"

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message, status_code=status_code)
        self.reason = "forbidden" if status_code == 403 else "unauthorized"


class NotFoundError(PermanentError):
    """The upstream does not know the agent or run asked for (404)."""

    reason = "not_found"


class ClientError(PermanentError):
    """The upstream rejected the request with a 4xx other than 401/403/404/429."""

    reason = "http_4xx"


class MalformedPageError(PermanentError):
    """A response body is not the documented shape (not JSON, wrong envelope)."""

    reason = "malformed_page"


class RedirectError(PermanentError):
    """The upstream redirected to another origin; not followed, so credentials stay home."""

    reason = "redirect"


class ResponseTooLargeError(PermanentError):
    """A response body is larger than the source's `max_response_bytes`; reading stopped."""

    reason = "too_large"


class InvalidUrlError(PermanentError):
    """No request URL can be formed from the ids given; nothing was sent."""

    reason = "invalid_id"


POLL_ERROR_REASONS = (
    "timeout",
    "connect",
    "http_5xx",
    "rate_limited",
    "unauthorized",
    "forbidden",
    "not_found",
    "http_4xx",
    "malformed_page",
    "redirect",
    "too_large",
    "invalid_id",
    "page_cap",
    "internal",
)
