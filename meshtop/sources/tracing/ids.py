"""Trace and span ids as the backends send them (hex, any case, leading zeros dropped, or
base64) made one form: lower-case hex of 16 or 32 digits."""

from __future__ import annotations

import base64
import binascii
import re

from meshtop.errors import UsageError

_HEX = re.compile(r"^[0-9a-fA-F]+$")


def hex_id(value: object) -> str:
    """A trace or span id in lower-case hex, 16 or 32 digits, from hex (any case; leading
    zeros may have been dropped, as Jaeger's and Tempo's JSON do) or from base64 (padded or
    not, standard or URL-safe, as protobuf-JSON writes ids). '' for none. An id that is
    neither is kept as it is, lower-cased: a span still shows."""
    text = str(value or "").strip()
    if not text:
        return ""
    # 11 and 22 characters: 8 and 16 bytes in unpadded base64, before hex that lost zeros
    if _HEX.match(text) and len(text) <= 32 and len(text) not in (11, 22):
        return text.lower().rjust(16 if len(text) <= 16 else 32, "0")
    raw = _base64(text)
    if raw is not None and len(raw) in (8, 16):
        return raw.hex()
    if _HEX.match(text) and len(text) <= 32:
        return text.lower().rjust(16 if len(text) <= 16 else 32, "0")
    return text.lower()


def _base64(text: str) -> bytes | None:
    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return (
                decode(padded.encode(), validate=True)
                if decode is base64.b64decode
                else decode(padded.encode())
            )
        except (binascii.Error, ValueError):
            continue
    return None


def user_trace_id(text: str) -> str:
    """A trace id the user typed: hex (16 or 32 digits) or base64. Raises `UsageError`."""
    found = hex_id(text)
    if len(found) not in (16, 32) or not _HEX.match(found):
        raise UsageError(f"{text!r} is not a trace id: give 16 or 32 hex digits (or base64)")
    return found
