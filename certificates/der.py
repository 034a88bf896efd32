"""A small, defensive DER reader for the identifier values Chinese CAs put in private
extensions (GM/T 0015) and subject attributes: strings wrapped in SET, SEQUENCE,
OCTET STRING or context tags, in varying string types. Pure; bounded depth and size;
never raises anything but ``DerError`` on malformed input."""

from __future__ import annotations

MAX_DEPTH = 8
MAX_SIZE = 64 * 1024

# Universal string types (X.680 §8.4) and how to decode them.
_STRINGS = {
    0x0C: "utf-8",  # UTF8String
    0x12: "ascii",  # NumericString
    0x13: "ascii",  # PrintableString
    0x14: "latin-1",  # TeletexString (T61), treated as Latin-1 in practice
    0x16: "ascii",  # IA5String
    0x1A: "ascii",  # VisibleString
    0x1E: "utf-16-be",  # BMPString
    0x1C: "utf-32-be",  # UniversalString
}


class DerError(ValueError):
    pass


def _read_tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """Return (tag, value, next position)."""
    if pos + 2 > len(data):
        raise DerError("truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not used here")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 3 or pos + n > len(data):
            raise DerError("bad length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise DerError("truncated value")
    return tag, data[pos : pos + length], pos + length


def oid_octets(dotted: str) -> bytes:
    """The content octets of an OBJECT IDENTIFIER (X.690 §8.19), to compare with what
    ``_read_tlv`` reads."""
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([parts[0] * 40 + parts[1]])
    for n in parts[2:]:
        chunk = [n & 0x7F]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7F))
            n >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def first_string(data: bytes, depth: int = 0) -> str:
    """The first string found depth-first in a DER structure.

    SEQUENCE/SET and context-specific constructed tags are descended into; an OCTET
    STRING is tried as nested DER and otherwise read as ASCII text. Raises ``DerError``
    when there is no string.
    """
    if depth > MAX_DEPTH:
        raise DerError("too deep")
    if len(data) > MAX_SIZE:
        raise DerError("too large")
    tag, value, end = _read_tlv(data, 0)
    if end != len(data) and depth == 0:
        raise DerError("trailing bytes")
    if tag in _STRINGS:
        try:
            return value.decode(_STRINGS[tag])
        except UnicodeDecodeError:
            raise DerError("bad string encoding") from None
    if tag == 0x04:  # OCTET STRING: nested DER or raw text
        try:
            return first_string(value, depth + 1)
        except DerError:
            return _ascii(value)
    if tag in (0x30, 0x31) or (tag & 0xE0) == 0xA0:  # SEQUENCE, SET, [n] constructed
        pos = 0
        while pos < len(value):
            inner_tag, _, nxt = _read_tlv(value, pos)
            try:
                return first_string(value[pos:nxt], depth + 1)
            except DerError:
                pos = nxt
        raise DerError("no string inside")
    if (tag & 0xE0) == 0x80:  # [n] primitive (implicit tagging): the bytes are the text
        return _ascii(value)
    raise DerError(f"unexpected tag 0x{tag:02x}")


def _ascii(value: bytes) -> str:
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        raise DerError("not text") from None
    if not text.isprintable():
        raise DerError("not printable")
    return text


def decode_value(data: bytes) -> str:
    """Decode an extension value: DER if it parses, otherwise raw ASCII bytes (some CAs
    put the bare identifier in the extension without any ASN.1)."""
    try:
        return first_string(data)
    except DerError:
        return _ascii(data)
