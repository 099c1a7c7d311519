"""Cursor paging shared by the platforms that have it: follow the cursor, never loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

from exporter.sources.base import Page

T = TypeVar("T")

Fetch = Callable[[str | None], Awaitable[tuple[T, str | None, bool]]]
"""Fetch one page at a cursor (None: the first); return (page, next cursor, has more)."""

MAX_AGENT_PAGES = 100


async def follow_cursor(fetch: Fetch[T]) -> AsyncGenerator[tuple[T, bool], None]:
    """Yield (page, more) until the platform has no more, or the cursor is missing or repeats.

    A repeated cursor ends the paging with `more` False: following it again would loop forever.
    """
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page, next_cursor, has_more = await fetch(cursor)
        more = has_more and next_cursor is not None and next_cursor not in seen
        yield page, more
        if not more or next_cursor is None:
            return
        seen.add(next_cursor)
        cursor = next_cursor


async def cursor_pages(fetch: Fetch[Page]) -> AsyncGenerator[Page, None]:
    """Yield the run pages `fetch` reads along the cursor, each saying whether more follow."""
    async with contextlib.aclosing(follow_cursor(fetch)) as stream:
        async for page, more in stream:
            page.has_more = more
            yield page


def cursor_of(value: Any) -> str | None:
    """Return a usable cursor from a payload value, or None."""
    return value if isinstance(value, str) and value else None


async def collect(fetch: Fetch[list[T]], *, max_pages: int = MAX_AGENT_PAGES) -> list[T]:
    """Return every item of a cursor-paged listing, reading at most `max_pages` pages."""
    items: list[T] = []
    async with contextlib.aclosing(follow_cursor(fetch)) as stream:
        pages = 0
        async for page, _more in stream:
            items.extend(page)
            pages += 1
            if pages >= max_pages:
                break
    return items
