"""Whole documents stored packed: JSON, deflated (zlib), then base64.

The customer document and the usage history are read and written whole, by one key each,
and are mostly the same field names and values over and over (every entitlement spells
its provenance out), so deflate takes them to about a sixth (bench/README.md, issue 8).
Base64 keeps the stored value ASCII text: a client with ``decode_responses`` reads it as
a str (its UTF-8 decoding would fail on raw deflate bytes), and so does every pipeline
and transaction, without per-command decoding options.

Governance nodes are packed one by one (``pack_node``): each is read alone (a level of a
tree, the 50 rows of a near-limit page), and at ~600 bytes deflate alone saves little, so
they are deflated against a preset dictionary of what every node spells out (field names,
states, cadences): 606 → 258 bytes a node on the bulk world, the largest family of the read
model (bench/README.md, issue 11). A hierarchy's index (``gov:{id}:index``) is read whole
and packed whole.

Assumed: nothing reads these keys but this package (no Lua script parses them; the
near-limit scripts read rankings and rows, which stay plain JSON). The key layout's
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
    if _plain(raw):
        return json.loads(raw)
    return json.loads(zlib.decompress(base64.b64decode(raw, validate=True)))


# What a governance node spells out whatever the customer (sync's NodeDoc: field names, a
# budget with and without a limit, time-to-limit states, cadences). Deflate matches a node
# against these bytes, the likeliest at the end. Changing a byte of it changes what every
# stored node means: bump keys.LAYOUT_VERSION with it, so the sweep rewrites them all.
NODE_DICTIONARY = (
    b'"blocking":[{"capability":"","entity_id":"","scope":[]}],"utilization":0.,"usage":'
    b'"budgets":[{"capability":"","scope":[],"limit":,"usage":,"utilization":0.,"cadence":"P1M",'
    b'"period_end":"2026-11-01T00:00:00.000000+00:00","ttl":{"state":"before_reset","seconds_to_limit":,'
    b'"rate_per_hour":},"urgency":1.0},{"capability":"","scope":[],"limit":null,"usage":null,'
    b'"utilization":null,"cadence":"P1D","period_end":null,"ttl":{"state":"not_this_window",'
    b'"rate_per_hour":0.},"urgency":0.5}],'
    b'{"id":"","type":"user","name":"","parent":"","depth":3,"children":0,"path":["",""],'
)
_RAW_DEFLATE = -15  # no zlib header or checksum: 6 bytes of ~190 (base64 decoding checks the rest)


def pack_node(value: Any) -> str:
    """A governance node as stored: compact JSON, deflated against NODE_DICTIONARY, base64."""
    packer = zlib.compressobj(LEVEL, zlib.DEFLATED, _RAW_DEFLATE, zdict=NODE_DICTIONARY)
    data = packer.compress(json.dumps(value, separators=(",", ":")).encode()) + packer.flush()
    return base64.b64encode(data).decode("ascii")


def unpack_node(raw: str | bytes) -> Any:
    """The node ``pack_node`` stored (or one stored as plain JSON before packing)."""
    if _plain(raw):
        return json.loads(raw)
    unpacker = zlib.decompressobj(_RAW_DEFLATE, zdict=NODE_DICTIONARY)
    return json.loads(unpacker.decompress(base64.b64decode(raw, validate=True)) + unpacker.flush())


def _plain(raw: str | bytes) -> bool:
    # plain JSON from before packing: "{" and "[" are not base64 characters
    return raw[:1] in ("{", "[", b"{", b"[")
