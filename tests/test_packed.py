"""The packed form of whole documents (readmodel/packed.py): what is stored reads back
exactly, as ASCII text, through clients that decode replies and clients that do not."""
from __future__ import annotations

import json
import uuid
import zlib

import pytest
import redis

from dashboard.readmodel import ReadModel
from dashboard.readmodel.packed import pack, pack_node, unpack, unpack_node

from .test_read_model import T0, node, snapshot

HOSTILE = {
    "id": "acme:history/%20 ü",
    "name": "Ünïcode \"quoted\" \\ back\0null\x1fsep 東京 🚀",
    "numbers": [0, -1, 1.5, 1e300, 85, 85.0, None, True, False],
    "nested": {"": [], "a": {"b": [{"c": None}]}},
}


@pytest.mark.parametrize("value", [HOSTILE, [], {}, "", 0, None, [HOSTILE] * 50])
def test_it_unpacks_exactly_what_it_packed(value):
    assert unpack(pack(value)) == value
    assert json.dumps(unpack(pack(value))) == json.dumps(value)  # 85 stays 85, 85.0 stays 85.0, key order kept


def test_it_stores_ascii_text_that_reads_back_from_str_or_bytes():
    stored = pack(HOSTILE)
    assert stored.isascii() and stored.isprintable()
    assert unpack(stored) == unpack(stored.encode()) == HOSTILE


def test_it_still_reads_a_document_stored_as_plain_json_before_packing():
    doc, _ = snapshot("c1")
    before = json.dumps(doc, separators=(",", ":"))  # layout 7's form, until a sweep empties it
    assert unpack(before) == unpack(before.encode()) == unpack(pack(doc))


def test_it_packs_a_customer_document_to_a_fraction_of_its_json():
    doc, _ = snapshot("c1")
    as_json = json.dumps(doc, separators=(",", ":"))
    assert len(pack(doc)) < len(as_json) / 2
    assert unpack(pack(doc)) == json.loads(as_json)


@pytest.mark.parametrize("decode", [True, False])
def test_it_reads_back_documents_through_clients_that_decode_or_not(redis_server, decode):
    client = redis.Redis.from_url(redis_server.url, decode_responses=decode)
    rm = ReadModel(client, prefix=f"test:{uuid.uuid4().hex[:8]}:")
    try:
        doc, governance = snapshot("acme:history", nodes=())
        assert rm.write_customer(doc, governance)
        history = {"fetched_at": T0.isoformat(), "start": T0.isoformat(),
                   "features": {"api": {"feature_id": "api", "points": [[T0.isoformat(), 1.5]], "resets": [],
                                        "error": None}}}
        rm.write_usage_history("acme:history", history)
        assert rm.customer("acme:history") == json.loads(json.dumps(doc))
        assert rm.usage_history("acme:history") == history
        rm.mark_customer_error("acme:history", "Stigg unavailable", T0)
        after = rm.customer("acme:history")
        assert after is not None and after["error"] == "Stigg unavailable" and after["profile"] == doc["profile"]
    finally:
        rm.clear()
        client.close()


def _stored_nodes():
    _, governance = snapshot("acme", nodes=(node("team-a", 900, 1000), node("team-b", None, None),
                                            node("org", 10, 100, feature=None, currency="credits"),
                                            node("team-a", 5, 50, scope=("gpt-4o",))))
    return list(governance["nodes"].values())


@pytest.mark.parametrize("value", [HOSTILE, {}, [], None])
def test_a_node_unpacks_exactly_what_it_packed(value):
    stored = pack_node(value)
    assert stored.isascii() and stored.isprintable()
    assert unpack_node(stored) == unpack_node(stored.encode()) == value
    assert json.dumps(unpack_node(stored)) == json.dumps(value)


def test_nodes_pack_against_the_dictionary_to_under_half_their_json():
    for doc in _stored_nodes():
        as_json = json.dumps(doc, separators=(",", ":"))
        assert unpack_node(pack_node(doc)) == json.loads(as_json)
        assert len(pack_node(doc)) < len(as_json) / 2, as_json


def test_a_node_stored_as_plain_json_before_packing_still_reads():
    doc = _stored_nodes()[0]
    before = json.dumps(doc, separators=(",", ":"))  # layout 11's form, until a sweep empties it
    assert unpack_node(before) == unpack_node(before.encode()) == doc
    assert unpack("[1,2]") == unpack(b"[1,2]") == [1, 2]  # a hierarchy index stored plain


def test_a_damaged_node_is_an_error_not_a_wrong_node():
    stored = pack_node(_stored_nodes()[0])
    with pytest.raises((zlib.error, ValueError)):  # ValueError: base64's and JSON's errors
        unpack_node(stored[:-8] + "AAAAAAAA")


@pytest.mark.parametrize("decode", [True, False])
def test_a_hierarchy_reads_back_through_clients_that_decode_or_not(redis_server, decode):
    client = redis.Redis.from_url(redis_server.url, decode_responses=decode)
    rm = ReadModel(client, prefix=f"test:{uuid.uuid4().hex[:8]}:")
    try:
        doc, governance = snapshot("acme:gov", nodes=(node("team-a", 900, 1000), node("team-b", 10, 100)))
        assert rm.write_customer(doc, governance)
        expected = json.loads(json.dumps(governance["nodes"]))
        assert {n["id"]: n for n in rm.governance_level("acme:gov")} == expected
        assert rm.governance_node("acme:gov", "team-a") == expected["team-a"]
        assert [n["id"] for n in rm.governance_index("acme:gov")] == list(expected)
    finally:
        rm.clear()
        client.close()
