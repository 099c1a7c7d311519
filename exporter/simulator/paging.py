"""Cursor paging, newest first, that stays stable while new items arrive at the top.

A cursor is the urlsafe-base64 of `<created_ms>:<id>` of the last item returned (ids are
alphanumerics, `_` and `-`); the next page
holds the items strictly older than it by (created_ms, id). Items created after the first page
therefore never shift later pages, and every item present for the whole walk is seen exactly once.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Callable, Sequence
from typing import TypeVar

from starlette.requests import Request

from exporter.simulator.gate import ApiError

T = TypeVar("T")
Key = tuple[int, str]


class CursorError(ValueError):
    """The cursor was not produced by this server."""


def encode_cursor(key: Key) -> str:
    """Encode a (created_ms, id) key as an opaque cursor."""
    raw = f"{key[0]}:{key[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Key:
    """Decode a cursor into its (created_ms, id) key, or raise `CursorError`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, item_id = raw.partition(":")
        key = (int(created), item_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise CursorError(cursor) from exc
    if not item_id.replace("_", "").replace("-", "").isalnum() or key[0] < 0:
        raise CursorError(cursor)
    return key


def newest_first(
    items: Sequence[T],
    key: Callable[[T], Key],
    limit: int,
    before: Key | None = None,
    keep: Callable[[T], bool] | None = None,
) -> tuple[list[T], bool]:
    """Return up to `limit` kept items older than `before`, newest first, and whether more remain.

    `items` must be sorted oldest first by `key`.
    """
    end = len(items) if before is None else bisect.bisect_left(items, before, key=key)
    page: list[T] = []
    for index in range(end - 1, -1, -1):
        item = items[index]
        if keep is not None and not keep(item):
            continue
        if len(page) == limit:
            return page, True
        page.append(item)
    return page, False


def query_limit(request: Request, default: int = 20, maximum: int = 100) -> int:
    """Return the request's `limit`, or answer 400 when it is not an integer in 1..maximum."""
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ApiError(400, f"limit must be an integer between 1 and {maximum}")
    return int(raw)


def query_cursor(request: Request) -> tuple[int, str] | None:
    """Return the position the request's `cursor` names, None without one; 400 when bad."""
    raw = request.query_params.get("cursor")
    if not raw:
        return None
    try:
        return decode_cursor(raw)
    except CursorError:
        raise ApiError(400, "Invalid cursor") from None
