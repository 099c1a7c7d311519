"""Content-Encoding decoding that never produces more bytes than the caller can hold.

    Content-Encoding: gzip, gzip   ─►  raw chunk ─► gunzip ─► gunzip ─► ≤ STEP bytes at a time

httpx decodes a whole raw chunk at once, through every layer: 2 KB of gzip-of-gzip then becomes a
gigabyte before any size cap can look at it. Here each layer hands on at most `STEP` bytes per
call (`zlib`'s `max_length`), so the caller counts the decoded bytes as they come and stops past
its cap; memory stays at the cap plus one step per layer, whatever the ratio or the number of
stacked encodings. Supported: gzip, x-gzip, deflate (zlib-wrapped or raw) and identity; any other
encoding is refused, and only these are asked for (`ACCEPT_ENCODING`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

STEP = 64 * 1024
ACCEPT_ENCODING = "gzip, deflate"
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class DecodingError(ValueError):
    """The body's encoding is unknown or its compressed data is corrupt."""


class _Layer:
    """One zlib-family decompressor; `deflate` tries the zlib wrapper, then raw deflate."""

    def __init__(self, encoding: str) -> None:
        self._deflate = encoding == "deflate"
        self._started = False
        self._inner = zlib.decompressobj(_GZIP_WBITS if not self._deflate else zlib.MAX_WBITS)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """Yield the decoded bytes of `data` in pieces of at most STEP bytes."""
        while True:
            out = self._decompress(data)
            data = self._inner.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < STEP:
                return

    def _decompress(self, data: bytes) -> bytes:
        try:
            out = self._inner.decompress(data, STEP)
        except zlib.error as exc:
            if not self._deflate or self._started:
                raise DecodingError(f"corrupt compressed body ({exc})") from None
            self._inner = zlib.decompressobj(-zlib.MAX_WBITS)  # a raw deflate stream
            self._deflate = False  # a second failure is final
            return self._decompress(data)
        self._started = self._started or bool(data)
        return out

    def finish(self) -> Iterator[bytes]:
        """Yield what the decompressor still holds at the end of the body."""
        yield from self.pieces(b"")


class BoundedDecoder:
    """Undo a `Content-Encoding` header's encodings, in pieces of at most STEP bytes."""

    def __init__(self, content_encoding: str) -> None:
        names = [name.strip().lower() for name in content_encoding.split(",") if name.strip()]
        unknown = [name for name in names if name not in ("gzip", "x-gzip", "deflate", "identity")]
        if unknown:
            raise DecodingError(f"unsupported Content-Encoding {unknown[0][:32]!r}")
        # The header lists encodings in the order they were applied: undo the last one first.
        self._layers = [_Layer(name) for name in reversed(names) if name != "identity"]

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield the decoded bytes of the next raw chunk."""
        return self._through(0, data)

    def finish(self) -> Iterator[bytes]:
        """Yield what the layers still hold after the last raw chunk, first layer first."""
        for index, layer in enumerate(self._layers):
            for piece in layer.finish():
                yield from self._through(index + 1, piece)

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._layers):
            if data:
                yield data
            return
        for piece in self._layers[index].pieces(data):
            yield from self._through(index + 1, piece)
