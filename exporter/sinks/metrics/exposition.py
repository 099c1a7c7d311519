"""The /metrics body, rendered fast: families that carry their own text, spliced between the
generic rendering of prometheus_client for every other metric.

A collector with many series yields `RenderedFamily` objects: their text is built by the
collector (from per-series lines it caches until they change), in exactly the bytes
prometheus_client would write. `render` copies that text and leaves every other metric to
prometheus_client's encoders. Anything else that reads the registry (`get_sample_value`,
`generate_latest`) still sees ordinary samples, built only when read.
"""

from __future__ import annotations

import bisect
import gzip
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple, cast

from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from exporter.sinks.metrics.lines import Labels, label_pairs, number

OPENMETRICS = "application/openmetrics-text"
_EOF = b"# EOF\n"
MAX_INSERTS = 256  # more changed series than this: rebuild a family's order instead
CHUNK_BYTES = 4096  # a chunk's text: small enough to join again cheaply, big enough to pay
GZIP_LEVEL = 1  # the text is repetitive: level 1 compresses it ~9x, at a fraction of the cost


class RenderedFamily(Metric):
    """A metric family that carries its exposition text; its samples are built only if read.

    `body(openmetrics)` returns the sample lines in that format, in chunks the caller must not
    change; `reference()` returns the ordinary family with the same samples, for any reader
    that is not `render`.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        typ: str,
        body: Callable[[bool], Sequence[bytes]],
        reference: Callable[[], Metric],
    ) -> None:
        self._built: list[Sample] | None = None
        super().__init__(name, documentation, typ)
        self._body = body
        self._reference = reference

    @property
    def samples(self) -> list[Sample]:
        """Return the samples, built from the reference family on first read."""
        if self._built is None:
            self._built = list(self._reference().samples)
        return self._built

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        self._built = value or None

    def exposition(self, openmetrics: bool) -> list[bytes]:
        """Return the family's HELP, TYPE and sample lines in one format, in chunks."""
        name = self.name
        if openmetrics:
            help_text = self.documentation.replace("\\", r"\\").replace("\n", r"\n")
            help_text = help_text.replace('"', r"\"")
        else:
            help_text = self.documentation.replace("\\", r"\\").replace("\n", r"\n")
            name += "_total" if self.type == "counter" else ""
        head = f"# HELP {name} {help_text}\n# TYPE {name} {self.type}\n".encode()
        return [head, *self._body(openmetrics)]


class SeriesLines:
    """The rendered lines of each series of one family, in key order, re-rendered once changed.

    `render(key)` returns the key's lines as (text format, OpenMetrics) bytes; `changed(key)`
    marks a key, new or not, to render again at the next `body`. The lines are served in chunks
    of consecutive series (about CHUNK_BYTES each); only the chunks whose series changed are
    joined again.
    """

    def __init__(self, render: Callable[[Labels], tuple[bytes, bytes]]) -> None:
        self._render = render
        self._keys: list[Labels] = []  # sorted; the lines are in the same order
        self._lines: tuple[list[bytes], list[bytes]] = ([], [])  # text, OpenMetrics
        self._stale: set[Labels] = set()
        self._per_chunk = 0  # series per chunk, chosen once from the first lines
        self._chunks: tuple[list[bytes | None], list[bytes | None]] = ([], [])

    def changed(self, key: Labels) -> None:
        """Mark the key's lines stale."""
        self._stale.add(key)

    def body(self, openmetrics: bool) -> list[bytes]:
        """Return every series' lines in key order, in one format, in chunks."""
        if self._stale:
            stale, self._stale = self._stale, set()
            if len(stale) > MAX_INSERTS:
                self._rebuild(stale)
            else:
                for key in stale:
                    self._update(key)
        chunks = self._chunks[openmetrics]
        for index, chunk in enumerate(chunks):
            if chunk is None:
                chunks[index] = self._chunk(index, openmetrics)
        return cast(list[bytes], chunks)

    def _chunk(self, index: int, openmetrics: bool) -> bytes:
        window = slice(index * self._per_chunk, (index + 1) * self._per_chunk)
        text, om = self._lines[0][window], self._lines[1][window]
        other = self._chunks[not openmetrics][index]
        if other is not None and all(a is b for a, b in zip(text, om, strict=True)):
            return other  # the same lines in both formats: share one chunk
        return b"".join(om if openmetrics else text)

    def _update(self, key: Labels) -> None:
        keys, (text, om) = self._keys, self._lines
        index = bisect.bisect_left(keys, key)
        lines = self._render(key)
        if index < len(keys) and keys[index] == key:
            text[index], om[index] = lines
            if self._per_chunk:  # the common case, a changed series: its chunk only
                chunk = index // self._per_chunk
                self._chunks[0][chunk] = self._chunks[1][chunk] = None
            else:
                self._dirty(index, index + 1)
        else:
            keys.insert(index, key)
            text.insert(index, lines[0])
            om.insert(index, lines[1])
            self._dirty(index, len(keys))  # every later series moved

    def _rebuild(self, stale: set[Labels]) -> None:
        old = dict(zip(self._keys, zip(*self._lines, strict=True), strict=True))
        lines = old | {key: self._render(key) for key in stale}
        self._keys = sorted(lines)
        self._lines = [lines[key][0] for key in self._keys], [lines[key][1] for key in self._keys]
        self._dirty(0, len(self._keys))

    def _dirty(self, start: int, stop: int) -> None:
        if not self._per_chunk:
            sample = self._lines[1][:64]
            if not sample:
                return
            average = sum(map(len, sample)) / len(sample)
            self._per_chunk = max(1, round(CHUNK_BYTES / average))
        count = -(-len(self._keys) // self._per_chunk)
        first, last = start // self._per_chunk, -(-stop // self._per_chunk)
        for chunks in self._chunks:
            del chunks[count:]
            chunks.extend([None] * (count - len(chunks)))
            chunks[first:last] = [None] * (min(last, count) - first)


class GaugeLines:
    """A gauge's sample lines, rendered again only when its rows (label values, value) change."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str]) -> None:
        self._name = name
        self._help = help_text
        self._labels = tuple(labels)
        self._text: dict[Labels, str] = {}  # `{name="value",...}` by label values
        self._rows: Sequence[tuple[Labels, float]] | None = None
        self._body = b""

    def body(self, rows: Sequence[tuple[Labels, float]]) -> list[bytes]:
        """Return the lines of `rows`, in row order."""
        if rows != self._rows:
            if len(self._text) > 2 * len(rows) + 64:  # forget the label sets that are gone
                self._text.clear()
            name, labels = self._name, self._label_text
            text = "".join([f"{name}{labels(v)} {number(x)}\n" for v, x in rows])
            self._body = text.encode()
            self._rows = rows
        return [self._body]

    def family(self, rows: Sequence[tuple[Labels, float]]) -> RenderedFamily:
        """Return the gauge family of `rows` ((label values, value) pairs), rendered from here."""

        def reference() -> Metric:
            gauge = GaugeMetricFamily(self._name, self._help, labels=self._labels)
            for values, value in rows:
                gauge.add_metric(values, value)
            return gauge

        def body(_openmetrics: bool) -> list[bytes]:
            return self.body(rows)

        return RenderedFamily(self._name, self._help, "gauge", body, reference)

    def _label_text(self, values: Labels) -> str:
        text = self._text.get(values)
        if text is None:
            text = self._text[values] = "{" + ",".join(label_pairs(self._labels, values)) + "}"
        return text


def render(registry: Collector, accept: str, accept_encoding: str = "") -> Exposition:
    """Return the registry's exposition in the format `accept` asks for, gzipped if accepted.

    Uncompressed, it equals byte for byte the output of the encoder `choose_encoder` picks.
    """
    encoder, content_type = choose_encoder(accept)
    openmetrics = content_type.startswith(OPENMETRICS)
    chunks: list[bytes] = []
    others: list[Metric] = []
    for metric in registry.collect():
        if isinstance(metric, RenderedFamily):
            chunks.append(_generic(encoder, others, openmetrics))
            chunks.extend(metric.exposition(openmetrics))
            others = []
        else:
            others.append(metric)
    chunks.append(_generic(encoder, others, openmetrics))
    if openmetrics:
        chunks.append(_EOF)
    body = b"".join(chunks)
    if gzip_accepted(accept_encoding):
        return Exposition(gzip.compress(body, GZIP_LEVEL, mtime=0), content_type, "gzip")
    return Exposition(body, content_type, None)


class Exposition(NamedTuple):
    """A /metrics response body, its content type and its content encoding (None: identity)."""

    body: bytes
    content_type: str
    encoding: str | None


class _Metrics(Collector):
    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._metrics


def _generic(encoder: Callable[[Collector], bytes], metrics: list[Metric], om: bool) -> bytes:
    if not metrics:
        return b""
    text = encoder(_Metrics(metrics))
    return text[: -len(_EOF)] if om and text.endswith(_EOF) else text
