"""Customer search (readmodel/search.py): every answer equals a brute-force search over the
customers' own documents — across filters, sorts, pages, changes written by another
client and a read model cleared under it — on a real Redis."""
from __future__ import annotations

import random
import uuid

import pytest
import redis

from dashboard.readmodel import ReadModel
from dashboard.readmodel.search import SearchIndex, index_for

from .test_read_model import snapshot

NAMES = ["Acme", "Globex", "Initech", "Ünïcode Straße", "Zed\nNewline", "acme lowercase", "Hooli", "Vandelay"]
PLANS, STATUSES, OWNERS = ["pro", "free", "enterprise"], ["ACTIVE", "IN_TRIAL", "CANCELED"], ["Ana", "Bo", ""]


def _world(rnd: random.Random, n: int) -> dict[str, dict]:
    """id -> what brute force needs (name, email, plan, status, owner, highest utilization)."""
    out = {}
    for i in range(n):
        cid = f"c-{rnd.randrange(10 ** 6):06d}" if i % 9 else f"C:{i}/ü"
        name = None if i % 13 == 0 else f"{rnd.choice(NAMES)} {i}"
        out[cid] = {"name": name, "email": f"ops{i}@{rnd.choice(['acme.test', 'globex.io'])}",
                    "plan": rnd.choice(PLANS), "status": rnd.choice(STATUSES), "owner": rnd.choice(OWNERS),
                    "usage": None if i % 7 == 0 else rnd.randrange(0, 1200)}
    return out


def _write(rm: ReadModel, cid: str, c: dict) -> None:
    doc, gov = snapshot(cid, name=c["name"], email=c["email"], plan=c["plan"], status=c["status"],
                        api_usage=c["usage"], storage=False)
    if c["owner"]:
        doc["profile"]["metadata"]["accountOwner"] = c["owner"]
    assert rm.write_customer(doc, gov)


def _brute(rm: ReadModel, world: dict, needle: str, plan: str | None, status: str | None, owner: str | None,
           sort: str) -> list[str]:
    """The ids a search must answer, in order, from the unfiltered list itself."""
    needle = needle.strip().casefold()
    every = rm.customers_page(sort=sort, limit=500).rows
    offset = 500
    while len(every) < len(world):
        every += rm.customers_page(sort=sort, limit=500, offset=offset).rows
        offset += 500
    return [r.id for r in every
            if (needle in r.id.casefold() or needle in (r.name or "").casefold().replace("\n", " ")
                or needle in (r.email or "").casefold())
            and (not plan or world[r.id]["plan"] == plan) and (not status or world[r.id]["status"] == status)
            and (not owner or world[r.id]["owner"] == owner)]


def _searched(rm: ReadModel, needle: str, sort: str, **filters) -> tuple[list[str], int, bool]:
    ids, offset, total, more = [], 0, None, False
    while offset is not None:
        page = rm.customers_page(search=needle, sort=sort, offset=offset, limit=37, **filters)
        ids += [r.id for r in page.rows]
        total, more, offset = page.total, page.more, page.next_offset
    return ids, total, more


@pytest.fixture
def world(rm):
    rnd = random.Random(11)
    customers = _world(rnd, 400)
    for cid, c in customers.items():
        _write(rm, cid, c)
    return rm, customers, rnd


NEEDLES = ["acme", "ACME", "c-0", "ops1", "straße", "zed newline", "globex.io", "c:9/ü", "nobody", "1", "e"]


@pytest.mark.parametrize("sort", ["name", "utilization"])
def test_every_search_equals_brute_force(world, sort):
    rm, customers, _ = world
    for needle in NEEDLES:
        for filters in ({}, {"plan": "pro"}, {"status": "IN_TRIAL"}, {"owner": "Ana"},
                        {"plan": "free", "status": "ACTIVE", "owner": "Bo"}):
            expected = _brute(rm, customers, needle, filters.get("plan"), filters.get("status"),
                              filters.get("owner"), sort)
            ids, total, more = _searched(rm, needle, sort, **filters)
            assert (ids, total, more) == (expected, len(expected), False), (needle, filters)


def test_changes_by_another_client_are_found_at_once(world, redis_server):
    rm, customers, rnd = world
    assert _searched(rm, "acme", "name")[1] > 0  # this process's index is built
    other = ReadModel(redis.Redis.from_url(redis_server.url, decode_responses=True), prefix=rm.prefix)
    renamed = sorted(customers)[:40]
    for cid in renamed:
        customers[cid] = {**customers[cid], "name": f"Renamed Wombat {cid}", "plan": rnd.choice(PLANS)}
        _write(other, cid, customers[cid])
    other.remove_customers(renamed[:10])
    for cid in renamed[:10]:
        del customers[cid]
    for sort in ("name", "utilization"):
        for needle, filters in (("wombat", {}), ("wombat", {"plan": "pro"}), ("acme", {}), ("e", {"owner": "Bo"})):
            expected = _brute(rm, customers, needle, filters.get("plan"), None, filters.get("owner"), sort)
            assert _searched(rm, needle, sort, **filters)[0] == expected, (needle, filters, sort)
    other.r.close()


def test_a_cleared_read_model_is_searched_afresh(world):
    rm, customers, _ = world
    assert _searched(rm, "acme", "name")[1] > 0
    rm.clear()
    assert _searched(rm, "acme", "name") == ([], 0, False)
    _write(rm, "only-one", {"name": "Acme Alone", "email": "a@b.c", "plan": "pro", "status": "ACTIVE",
                            "owner": "", "usage": 5})
    assert _searched(rm, "acme", "name") == (["only-one"], 1, False)


def test_many_matches_by_utilization_walk_the_order(rm):
    """Past search.SORT_BY_SCORE matches, a search by utilization walks the sort order."""
    rnd = random.Random(3)
    customers = _world(rnd, 2_100)
    for cid, c in customers.items():
        _write(rm, cid, c)
    for filters in ({}, {"plan": "pro"}):
        expected = _brute(rm, customers, "ops", filters.get("plan"), None, None, "utilization")
        page = rm.customers_page(search="ops", sort="utilization", offset=70, limit=50, **filters)
        assert [r.id for r in page.rows] == expected[70:120]
        assert page.total == len(expected) and not page.more


def test_past_the_count_cap_the_total_is_a_lower_bound_and_pages_stay_exact(world):
    """A SearchIndex with small limits, on the same read model, against brute force."""
    rm, customers, _ = world
    small = SearchIndex(count_cap=50, sort_by_score=20, block=7)
    small.refresh(rm.r, rm.keys)
    expected = _brute(rm, customers, "e", None, None, None, "name")
    assert len(expected) > 100
    first = small.find("e", ("", "", ""), True, 0, 30)
    assert (first.total, first.more, first.name_page) == (50, True, expected[:30])
    deep = small.find("e", ("", "", ""), True, 90, 30)
    assert deep.more and deep.total >= 120 and deep.name_page == expected[90:120]
    expected_few = _brute(rm, customers, "globex.io", "pro", "ACTIVE", None, "name")
    few = small.find("globex.io", ("pro", "active", ""), False, 0, 10)
    assert 0 < len(expected_few) <= 20 and few.total == len(expected_few) and not few.more
    assert sorted(cid for cid, _ in few.ids) == sorted(expected_few)  # scored and sorted by the caller
    many = small.find("e", ("", "", ""), False, 0, 10)
    assert (many.total, many.more, many.ids) == (50, True, None)  # by utilization: walk the order instead
    exactly = SearchIndex(count_cap=len(expected), sort_by_score=20)
    exactly.refresh(rm.r, rm.keys)
    at_cap = exactly.find("e", ("", "", ""), True, 0, 30)
    assert (at_cap.total, at_cap.more) == (len(expected), False)  # at the cap, not past it


def test_an_index_follows_changes_in_blocks(world):
    """Blocks split and empty as customers come and go; the order stays the list's."""
    rm, customers, rnd = world
    small = SearchIndex(block=5)
    small.refresh(rm.r, rm.keys)
    small.find("", ("", "", ""), True, 0, 1)  # the unfiltered index is built
    for i in range(60):
        cid = f"new-{i:03d}"
        customers[cid] = {"name": f"Aaa Early {i}", "email": f"n{i}@x.y", "plan": "pro", "status": "ACTIVE",
                          "owner": "", "usage": rnd.randrange(100)}
        _write(rm, cid, customers[cid])
    gone = sorted(customers)[:80]
    rm.remove_customers(gone)
    for cid in gone:
        del customers[cid]
    small.refresh(rm.r, rm.keys)
    for needle in ("", "early", "acme", "e"):
        found = small.find(needle, ("", "", ""), True, 0, 10_000)
        assert found.name_page == _brute(rm, customers, needle, None, None, None, "name"), needle


def test_each_read_model_has_its_own_index(rm, redis_server):
    other_prefix = ReadModel(redis.Redis.from_url(redis_server.url, decode_responses=True),
                             prefix=f"test:{uuid.uuid4().hex[:8]}:")
    assert index_for(rm.r, rm.keys) is index_for(rm.r, rm.keys)
    assert index_for(rm.r, rm.keys) is not index_for(other_prefix.r, other_prefix.keys)
    other_prefix.r.close()


def test_a_read_model_written_before_the_change_log_is_searched(world):
    """A read model whose entries were written with no change log (before search.py; its
    keys deleted here) is read whole the first time."""
    rm, customers, _ = world
    rm.r.delete(rm.keys.search_seq(), rm.keys.search_log(), rm.keys.search_epoch())
    fresh = SearchIndex()
    fresh.refresh(rm.r, rm.keys)
    assert fresh.find("acme", ("", "", ""), True, 0, 1000).name_page == _brute(rm, customers, "acme", None, None,
                                                                               None, "name")
