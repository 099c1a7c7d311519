"""The text of sample lines, in exactly the bytes prometheus_client writes: values, escaped label
values, counter lines and histogram series (buckets with exemplars in OpenMetrics, count, sum).
`exporter.sinks.metrics.exposition` splices them into the /metrics body.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from itertools import accumulate
from typing import cast

from prometheus_client.utils import floatToGoString

_SMALL: dict[float, str] = {n: f"{n}.0" for n in range(1 << 12)}  # 3.0 finds 3 too
_go = cast(Callable[[float], str], floatToGoString)
Labels = tuple[str, ...]


def number(value: float) -> str:
    """Format a sample value as prometheus_client does (`floatToGoString`), small counts fast."""
    text = _SMALL.get(value)
    if text is not None and (value or math.copysign(1.0, value) > 0):  # not -0.0
        return text
    return _go(value)


def label_value(value: str) -> str:
    """Escape a label value for both exposition formats."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def label_pairs(names: Sequence[str], values: Sequence[str]) -> list[str]:
    """Return `name="value"` for each label, in the name order both formats write."""
    return [
        f'{name}="{label_value(value)}"' for name, value in sorted(zip(names, values, strict=True))
    ]


def counter_line(name: str, labels: Sequence[str], values: Labels, value: float) -> bytes:
    """Return the sample line of one counter series (the same in both formats)."""
    return f"{name}{{{','.join(label_pairs(labels, values))}}} {number(value)}\n".encode()


class HistogramLines:
    """The lines of one histogram series: buckets (with exemplars in OpenMetrics), count, sum."""

    def __init__(self, name: str, labels: Sequence[str], bounds: Sequence[float]) -> None:
        self._name = name
        self._labels = tuple(labels)
        self._les = (*(label_value(repr(float(bound))) for bound in bounds), "+Inf")
        self._split = sum(1 for label in labels if label < "le")  # where `le` sorts among them

    def lines(
        self,
        values: Labels,
        counts: Sequence[float],
        total: float,
        exemplars: Mapping[int, tuple[str, float, float]],
    ) -> tuple[bytes, bytes]:
        """Return the series' lines as (text format, OpenMetrics); exemplars by bucket index."""
        name, pairs = self._name, label_pairs(self._labels, values)
        before = "".join(f"{pair}," for pair in pairs[: self._split])
        after = "".join(f",{pair}" for pair in pairs[self._split :])
        cumulative = list(accumulate(counts))  # added up in the order prometheus_client does
        buckets = [
            f'{name}_bucket{{{before}le="{le}"{after}}} {number(count)}'
            for le, count in zip(self._les, cumulative, strict=True)
        ]
        labels = ",".join(pairs)
        tail = f"\n{name}_count{{{labels}}} {number(cumulative[-1])}\n"
        tail += f"{name}_sum{{{labels}}} {number(total)}\n"
        text = ("\n".join(buckets) + tail).encode()
        if not exemplars:
            return text, text
        for index, (trace_id, value, ts) in exemplars.items():
            if index < len(buckets):  # as prometheus_client's path, which never looks further
                buckets[index] += f' # {{trace_id="{label_value(trace_id)}"}} {number(value)} {ts}'
        return text, ("\n".join(buckets) + tail).encode()
