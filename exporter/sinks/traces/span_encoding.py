"""Encode finished spans as OTLP/protobuf export request bytes, exactly as the OTel encoder does.

    ExportTraceServiceRequest
    └── ResourceSpans       one per distinct resource, in order of first appearance
        ├── Resource
        └── ScopeSpans      one per distinct scope of that resource
            ├── InstrumentationScope
            └── Span …      in the order given: ids, parent, name, kind, times,
                            attributes, links, status, flags

`encode_request(spans)` returns the bytes of OTel's `encode_spans(spans).SerializePartialToString()`
while writing the protobuf wire format directly: the OTel encoder builds a message per span,
attribute and value and hashes each span's resource through a JSON dump, which costs about seven
times more. Encoded attribute pairs with string values repeat from span to span (operation, tool,
agent, status), so they are kept in a bounded cache.

Only `plain` spans (the `RunSpan`s `exporter.sinks.traces.spans` builds: a plain attribute dict, no
events, nothing dropped) are written directly, read from the fields `ReadableSpan` keeps. A batch
holding any other span, or anything outside the common case (a trace state, attribute values
other than str, bool, int and float, out-of-range numbers, unencodable strings), is handed to
the OTel encoder whole, so the output never differs.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import DEFAULT_TRACE_STATE, Link, SpanKind, Status, StatusCode

_pack_fixed64 = struct.Struct("<Q").pack
_pack_double = struct.Struct("<d").pack
_pack_times = struct.Struct("<BQBQ").pack  # start (tag 7), end (tag 8): fixed64 each
_INT64 = (-(2**63), 2**63 - 1)
_SMALL_INT = 2**56  # at most 8 varint bytes
_UINT64 = 2**64 - 1
# field tags: (number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32)
_TRACE_ID = b"\x0a\x10"  # Span.trace_id = 1, always 16 bytes
_SPAN_ID = b"\x12\x08"  # Span.span_id = 2, always 8 bytes
_PARENT_ID = b"\x22\x08"  # Span.parent_span_id = 4
_NAME = b"\x2a"  # Span.name = 5
_KIND = {kind.value: bytes((0x30, kind.value + 1)) for kind in SpanKind}  # Span.kind = 6
_START = b"\x39"  # Span.start_time_unix_nano = 7
_END = b"\x41"  # Span.end_time_unix_nano = 8
_SPAN_ATTRIBUTE = b"\x4a"  # Span.attributes = 9
_LINK = b"\x6a"  # Span.links = 13
_STATUS = b"\x7a"  # Span.status = 15
_STATUS_UNSET = b"\x7a\x00"
_FLAGS = b"\x85\x01"  # Span.flags = 16 (fixed32): context-has-is-remote, maybe is-remote
_LOCAL, _REMOTE = (_FLAGS + struct.pack("<I", flags) for flags in (0x100, 0x300))
_LINK_FLAGS = b"\x35"  # Link.flags = 6
_LINK_ATTRIBUTE = b"\x22"  # Link.attributes = 4
_SCOPE_ATTRIBUTE = b"\x1a"  # InstrumentationScope.attributes = 3
_FIELD_1, _FIELD_2, _FIELD_3 = b"\x0a", b"\x12", b"\x1a"  # length-delimited fields 1, 2, 3
_SCOPE_SPAN = _FIELD_2  # ScopeSpans.spans = 2
_TRUE, _FALSE = b"\x10\x01", b"\x10\x00"  # AnyValue.bool_value = 2
_INT = b"\x18"  # AnyValue.int_value = 3
_DOUBLE = b"\x21"  # AnyValue.double_value = 4
_STATUS_CODE = b"\x18"  # Status.code = 3
_NO_TRACE_STATE = DEFAULT_TRACE_STATE
_VARINTS = [bytes((n,)) for n in range(0x80)]
_CACHE_LIMIT = 4096  # attribute keys and span names remembered
_VALUES_PER_KEY = 64  # string values remembered per key, beyond which a key keeps none


class Unsupported(Exception):
    """A span needs something this encoder leaves to the OTel encoder."""


def encode_request(spans: Sequence[ReadableSpan]) -> bytes:
    """Return the OTLP/protobuf `ExportTraceServiceRequest` bytes for `spans`."""
    try:
        return _request(spans)
    except Unsupported:
        data: bytes = encode_spans(spans).SerializePartialToString()
        return data


def varint(value: int) -> bytes:
    """Return a non-negative integer as a protobuf varint."""
    if value < 0x80:
        return _VARINTS[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """Return a length-delimited field: tag, length, payload."""
    size = len(payload)
    return tag + (_VARINTS[size] if size < 0x80 else varint(size)) + payload


def _text(tag: bytes, text: str) -> bytes:
    """Return a string field, or nothing for the empty string (proto3 leaves defaults out)."""
    if not text:
        return b""
    try:
        return _field(tag, text.encode())
    except UnicodeEncodeError as error:  # a lone surrogate: let OTel report it as it does
        raise Unsupported from error


class _Group:
    """The spans of one resource, by scope, in order of first appearance."""

    __slots__ = ("resource", "scopes")

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.scopes: list[tuple[InstrumentationScope | None, list[bytes]]] = []

    def spans_of(self, scope: InstrumentationScope | None) -> list[bytes]:
        for known, spans in self.scopes:
            if known is scope or (known is not None and known == scope):
                return spans
        spans = []
        self.scopes.append((scope, spans))
        return spans


def _request(spans: Sequence[ReadableSpan]) -> bytes:
    groups: list[_Group] = []
    resource: object = None
    scope: object = None
    encoded: list[bytes] = []
    for span in spans:
        if span.resource is not resource or span.instrumentation_scope is not scope:
            resource, scope = span.resource, span.instrumentation_scope
            encoded = _group(groups, span.resource).spans_of(span.instrumentation_scope)
        encoded.append(_span(span))
    return b"".join(_field(_FIELD_1, _resource_spans(group)) for group in groups)


def _group(groups: list[_Group], resource: Resource) -> _Group:
    """Find the group of an equal resource (OTel merges equal resources), or start one."""
    for group in groups:
        if group.resource is resource or group.resource == resource:
            return group
    groups.append(_Group(resource))
    return groups[-1]


def _resource_spans(group: _Group) -> bytes:
    resource = group.resource
    parts = [_field(_FIELD_1, b"".join(_attributes(_FIELD_1, resource.attributes)))]
    for scope, spans in group.scopes:
        scope_spans = [_field(_FIELD_1, _scope(scope))]
        scope_spans.extend(spans)
        scope_spans.append(_text(_FIELD_3, scope.schema_url or "") if scope else b"")
        parts.append(_field(_FIELD_2, b"".join(scope_spans)))
    parts.append(_text(_FIELD_3, resource.schema_url))
    return b"".join(parts)


def _scope(scope: InstrumentationScope | None) -> bytes:
    if scope is None:
        return b""
    parts = [_text(_FIELD_1, scope.name), _text(_FIELD_2, scope.version or "")]
    parts.extend(_attributes(_SCOPE_ATTRIBUTE, scope.attributes))
    return b"".join(parts)


def _span(span: Any) -> bytes:
    """Return a plain span as a `ScopeSpans.spans` field, read from the fields `ReadableSpan`
    keeps (`_name`, `_context`, ...): its properties would cost more than the encoding."""
    if not getattr(span, "plain", False):
        raise Unsupported
    try:
        context, parent = span._context, span._parent
        start, end, name = span._start_time, span._end_time, span._name
        parts = [
            _TRACE_ID,
            context[0].to_bytes(16, "big"),
            _SPAN_ID,
            context[1].to_bytes(8, "big"),
            _PARENT_ID + parent[1].to_bytes(8, "big") if parent else b"",
            _names.get(name) or _name(name),
            _KIND[span._kind._value_],
            _pack_times(0x39, start, 0x41, end) if start and end else _times(start, end),
        ]
        if context[4] is not _NO_TRACE_STATE or span._events:
            raise Unsupported
        if span._attributes:
            _span_attributes(parts, span._attributes)
        for link in span._links:
            parts.append(_link(link))
        status = span._status
        parts.append(_STATUS_UNSET if status is _unset_status else _status(status))
    except (OverflowError, struct.error, KeyError, TypeError, AttributeError) as error:
        raise Unsupported from error  # not what `RunSpan`s hold: OTel will say what is wrong
    parts.append(_REMOTE if parent and parent[2] else _LOCAL)
    body = b"".join(parts)
    size = len(body)
    return _SCOPE_SPAN + (_VARINTS[size] if size < 0x80 else varint(size)) + body


def _id_bytes(value: int, size: int) -> bytes:
    try:
        return value.to_bytes(size, "big")
    except OverflowError as error:
        raise Unsupported from error


_names: dict[str, bytes] = {}


def _name(name: str) -> bytes:
    encoded = _names.get(name)
    if encoded is None:
        if len(_names) >= _CACHE_LIMIT:
            _names.clear()
        encoded = _names[name] = _text(_NAME, name)
    return encoded


def _times(start: int | None, end: int | None) -> bytes:
    """Return the start and end time fields; zero (or unknown) times are left out."""
    if start and end:
        return _pack_times(0x39, start, 0x41, end)
    return (_START + _pack_fixed64(start) if start else b"") + (
        _END + _pack_fixed64(end) if end else b""
    )


_unset_status: Status | None = None  # the last UNSET status seen: spans often share one


def _status(status: Status | None) -> bytes:
    global _unset_status  # noqa: PLW0603 (a one-entry cache)
    if status is None:
        return b""
    if status.status_code is StatusCode.UNSET and not status.description:
        _unset_status = status
        return _STATUS_UNSET
    code = status.status_code.value
    body = _text(_FIELD_2, status.description or "") + (
        _STATUS_CODE + _VARINTS[code] if code else b""
    )
    return _STATUS + _VARINTS[len(body)] + body if len(body) < 0x80 else _field(_STATUS, body)


def _link(link: Link) -> bytes:
    context = link.context
    if link.dropped_attributes:
        raise Unsupported
    parts = [_TRACE_ID, _id_bytes(context.trace_id, 16), _SPAN_ID, _id_bytes(context.span_id, 8)]
    parts.extend(_attributes(_LINK_ATTRIBUTE, link.attributes))
    parts.append(_LINK_FLAGS + (_REMOTE if context.is_remote else _LOCAL)[2:])
    return _field(_LINK, b"".join(parts))


class _Key:
    """An attribute key's encoded field, and its encoded pairs by string value while few."""

    __slots__ = ("field", "heads", "pairs", "remember")

    def __init__(self, key: str) -> None:
        self.field = _text(_FIELD_1, key)
        self.heads: dict[int, bytes] = {}  # by value size: everything before a string's bytes
        self.pairs: dict[str, bytes] = {}
        self.remember = True

    def pair(self, value: object) -> bytes:
        """Return the encoded `KeyValue` of this key and `value`, as a span attribute."""
        if type(value) is not str:
            return self._other(value)
        try:
            data = value.encode()
        except UnicodeEncodeError as error:  # a lone surrogate: OTel drops it and logs
            raise Unsupported from error
        head = self.heads.get(len(data))
        pair = (self._head(len(data)) if head is None else head) + data
        if self.remember:
            self.pairs[value] = pair
            # ids and free text would only churn: past a few values, a key keeps none
            self.remember = len(self.pairs) < _VALUES_PER_KEY
        return pair

    def _head(self, size: int) -> bytes:
        """Return the fields and lengths that precede a string value of `size` bytes."""
        value = _FIELD_1 + varint(size)  # AnyValue.string_value, then its bytes
        key_value = self.field + _FIELD_2 + varint(len(value) + size) + value
        head = _SPAN_ATTRIBUTE + varint(len(key_value) + size) + key_value
        if len(self.heads) < _VALUES_PER_KEY:
            self.heads[size] = head
        return head

    def _other(self, value: object) -> bytes:
        if type(value) is int and 0 <= value < _SMALL_INT:  # counts and tokens: short varints
            encoded = varint(value)
            size = len(self.field) + len(encoded) + 3
            if size < 0x80:
                return (
                    bytes((0x4A, size))
                    + self.field
                    + bytes((0x12, len(encoded) + 1, 0x18))
                    + encoded
                )
        return _field(_SPAN_ATTRIBUTE, self.field + _field(_FIELD_2, _any_value(value)))


_keys: dict[str, _Key] = {}


def _span_attributes(encoded: list[bytes], attributes: Any) -> None:
    """Append a span's attributes as `KeyValue` fields."""
    keys = _keys
    for key, value in attributes.items():
        known = keys.get(key)
        if known is None:
            known = _new_key(key)
        pair = known.pairs.get(value) if type(value) is str else None
        encoded.append(known.pair(value) if pair is None else pair)


def _new_key(key: str) -> _Key:
    if type(key) is not str:
        raise Unsupported
    if len(_keys) >= _CACHE_LIMIT:
        _keys.clear()
    known = _keys[key] = _Key(key)
    return known


def _attributes(tag: bytes, attributes: Any) -> Iterable[bytes]:
    return [_key_value(tag, key, value) for key, value in (attributes or {}).items()]


def _key_value(tag: bytes, key: str, value: object) -> bytes:
    """Return one `KeyValue` field: its key, then its `AnyValue`."""
    if not isinstance(key, str):
        raise Unsupported
    return _field(tag, _text(_FIELD_1, key) + _field(_FIELD_2, _any_value(value)))


def _string_value(value: str) -> bytes:
    try:
        return _field(_FIELD_1, value.encode())
    except UnicodeEncodeError as error:  # a lone surrogate: OTel drops the attribute and logs
        raise Unsupported from error


def _any_value(value: object) -> bytes:
    """Return an `AnyValue` holding a str, bool, int or float, checked in OTel's order."""
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    if isinstance(value, str):
        return _string_value(value)
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise Unsupported
        return _INT + varint(value & _UINT64)
    if isinstance(value, float):
        return _DOUBLE + _pack_double(value)
    raise Unsupported
