"""Bounded Content-Encoding decoding: every layer hands on at most STEP bytes at a time."""

from __future__ import annotations

import gzip
import itertools
import zlib

import pytest

from exporter.sources.decoding import STEP, BoundedDecoder, DecodingError


def gzip_stream(size: int, block: bytes = b"\0" * (1024 * 1024)) -> bytes:
    """Return `size` bytes of zeros gzipped, built without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + packer.flush()


def decode_all(decoder: BoundedDecoder, raw: bytes, chunk: int = 4096) -> list[bytes]:
    pieces: list[bytes] = []
    for start in range(0, len(raw), chunk):
        pieces.extend(decoder.feed(raw[start : start + chunk]))
    pieces.extend(decoder.finish())
    return pieces


def test_a_gzip_of_gzip_bomb_comes_out_in_bounded_pieces_and_lazily() -> None:
    bomb = gzip.compress(gzip_stream(64 * 1024 * 1024))  # 64 MiB in a few KiB
    assert len(bomb) < 16 * 1024
    decoder = BoundedDecoder("gzip, gzip")
    pieces = decoder.feed(bomb)  # the whole bomb in one raw chunk
    taken = list(itertools.islice(pieces, 20))
    assert all(0 < len(piece) <= STEP for piece in taken)
    assert sum(map(len, taken)) <= 20 * STEP  # nothing was decoded beyond what was asked for


def test_stacked_and_mixed_encodings_decode_to_the_original() -> None:
    body = b'{"data": [' + b"1," * 100_000 + b"1]}"
    deflated = zlib.compress(gzip.compress(body))
    pieces = decode_all(BoundedDecoder("gzip, identity, deflate"), deflated)
    assert b"".join(pieces) == body
    assert max(map(len, pieces)) <= STEP


def test_raw_deflate_is_decoded_too() -> None:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw = packer.compress(b"hello " * 1000) + packer.flush()
    assert b"".join(decode_all(BoundedDecoder("deflate"), raw)) == b"hello " * 1000


def test_identity_passes_through() -> None:
    assert b"".join(decode_all(BoundedDecoder("identity"), b"abc" * 10)) == b"abc" * 10


@pytest.mark.parametrize("encoding", ["br", "gzip, zstd", "compress"])
def test_an_unsupported_encoding_is_refused(encoding: str) -> None:
    with pytest.raises(DecodingError, match="unsupported Content-Encoding"):
        BoundedDecoder(encoding)


def test_corrupt_data_is_a_decoding_error() -> None:
    with pytest.raises(DecodingError, match="corrupt"):
        decode_all(BoundedDecoder("gzip"), b"\x1f\x8b\x08\x00garbage-garbage-garbage")
