"""Whole documents stored packed: JSON, deflated (zlib), then base64.

The customer document and the usage history are read and written whole, by one key each,
and are mostly the same field names and values over and over (every entitlement spells
its provenance out), so deflate takes them to about a sixth (bench/README.md, issue 8).
Base64 keeps the stored value ASCII text: a client with ``decode_responses`` reads it as
a str (its UTF-8 decoding would fail on raw deflate bytes), and so does every pipeline
and transaction, without per-command decoding options.

Assumed: nothing reads these keys but this package (no Lua script parses them, and the
near-limit reads use rankings, nodes and rows, which stay plain JSON). The key layout's
version says which form a read model holds, and a sweep that finds another one empties and
refills it (keys.py); until that sweep runs, a value written before packing (plain JSON)
is still read, so a page or a refresh between a deploy and its first sweep does not fail."""
from __future__ import annotations

import base64
import json
import zlib
from typing import Any

# zlib's default level: on the bulk world's customer documents level 1 packed ~10 % larger
# and level 9 no smaller (bench/README.md, issue 8); a write is not the hot path.
LEVEL = 6


def pack(value: Any) -> str:
    """A JSON value as stored: compact JSON, deflated, base64."""
    text = json.dumps(value, separators=(",", ":"))
    return base64.b64encode(zlib.compress(text.encode(), LEVEL)).decode("ascii")


def unpack(raw: str | bytes) -> Any:
    """The value ``pack`` stored (str or bytes, as the Redis client answers)."""
    if raw[:1] in ("{", b"{"):
        return json.loads(raw)  # plain JSON from before packing: "{" is not a base64 character
    return json.loads(zlib.decompress(base64.b64decode(raw, validate=True)))
