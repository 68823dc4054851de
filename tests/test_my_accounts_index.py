"""The read model's "My accounts" indexes against a real redis-server: the customers list's
sort orders per account owner and the promotions by end date per owner, checked against a
brute-force answer from the documents written, through owner changes, errors and removals."""
from __future__ import annotations

import random
from datetime import timedelta

from dashboard.readmodel.documents import account_owner
from dashboard.stigg import Promotion

from .near_limit_world import customer_snapshot
from .test_read_model import T0

OWNERS = ("Maria Garcia", "Wei Chen", "Omar Haddad", "Hana Tanaka")
PLANS = ("free", "pro")
STATUSES = ("ACTIVE", "IN_TRIAL", "CANCELED")


def promotion(feature: str, ends_in_days: float | None, status: str = "Active") -> Promotion:
    end = T0 + timedelta(days=ends_in_days) if ends_in_days is not None else None
    return Promotion(f"promo-{feature}", feature, status, "custom" if end else "lifetime", T0 - timedelta(days=3),
                     end, 5000, False, False, None, "MONTH", T0 - timedelta(days=3))


def random_customer(rnd: random.Random, cid: str, minutes: int = 0):
    """A customer with an owner drawn from the team (in the metadata as people type it:
    padded with spaces at times), none, or one spelled in another case."""
    owner = rnd.choice([*OWNERS, f"  {OWNERS[0]} ", None, OWNERS[1].lower()])
    promotions = tuple(promotion(f, rnd.uniform(-5, 60), rnd.choice(("Active", "Active", "Expired")))
                       for f in rnd.sample(("api", "seats", "storage"), rnd.randint(0, 2)))
    return customer_snapshot(cid, name=rnd.choice(("Acme", "Globex", "Initech", None)) and f"{cid.title()} Co",
                             plan=rnd.choice(PLANS), status=rnd.choice(STATUSES), owner=owner,
                             api=rnd.uniform(0, 1200), promotions=promotions,
                             fetched_at=T0 + timedelta(minutes=minutes))


def ids(page) -> list[str]:
    return [r.id for r in page.rows]


def owners_of(written: dict) -> dict[str, str]:
    return {cid: account_owner(doc, "accountOwner") for cid, (doc, _) in written.items()}


def check_against_brute_force(rm, written: dict) -> None:
    """Every owner's list, in each order and filter, is the whole list's restricted to the
    customers whose metadata names that owner (stripped, case kept); its promotions ending
    soon likewise; and the near-limit owner counts agree."""
    owner_of = owners_of(written)
    status_of = {cid: doc["status"] for cid, (doc, _) in written.items()}
    plan_of = {cid: doc["plan_id"] for cid, (doc, _) in written.items()}
    for sort in ("name", "utilization"):
        for plan in (None, *PLANS):
            for status in (None, *STATUSES):
                whole = ids(rm.customers_page(sort=sort, plan=plan, status=status, limit=500))
                assert sorted(whole) == sorted(c for c in written if (plan is None or plan_of[c] == plan)
                                               and (status is None or status_of[c] == status))
                for owner in (*OWNERS, OWNERS[1].lower(), "Nobody"):
                    mine = rm.customers_page(sort=sort, plan=plan, status=status, owner=owner, limit=500)
                    assert ids(mine) == [c for c in whole if owner_of[c] == owner], (sort, plan, status, owner)
                    assert mine.total == len(mine.rows)
    # a search within my accounts, and a second page of them
    assert ids(rm.customers_page(search="co", owner=OWNERS[0], limit=500)) == [
        c for c in ids(rm.customers_page(search="co", limit=500)) if owner_of[c] == OWNERS[0]]
    assert ids(rm.customers_page(owner=OWNERS[0], offset=3, limit=5)) == [
        c for c in ids(rm.customers_page(limit=500)) if owner_of[c] == OWNERS[0]][3:8]
    window = (T0, T0 + timedelta(days=30))
    every = rm.expiring(*window, 0, 1000).rows
    for owner in OWNERS:
        theirs = rm.expiring(*window, 0, 1000, owner=owner)
        assert theirs.rows == [r for r in every if owner_of[r["customer_id"]] == owner]
        assert theirs.total == len(theirs.rows)
    counted = {o: n for o, n in rm.near_limit_choices()["owner"]}
    brute = {o: sum(1 for c in owner_of.values() if c == o) for o in set(owner_of.values()) - {""}}
    assert counted == brute


def test_my_accounts_lists_match_a_brute_force_answer_through_owner_changes_and_removals(rm):
    rnd = random.Random(10)
    written = {f"c{i:03d}": random_customer(rnd, f"c{i:03d}") for i in range(120)}
    for doc, gov in written.values():
        assert rm.write_customer(doc, gov)
    check_against_brute_force(rm, written)
    # a third of them rewritten: another owner (or none, or the same), plan, status, promotions
    for cid in rnd.sample(sorted(written), 40):
        written[cid] = random_customer(rnd, cid, minutes=1)
        assert rm.write_customer(*written[cid])
    # a failed refresh keeps the last good data, owner included
    for cid in rnd.sample(sorted(written), 10):
        rm.mark_customer_error(cid, "Stigg unavailable", T0 + timedelta(minutes=2))
    removed = rnd.sample(sorted(written), 25)
    assert rm.remove_customers(removed) == 25
    for cid in removed:
        del written[cid]
    check_against_brute_force(rm, written)


def test_an_owner_change_moves_the_customer_and_its_promotions_at_once(rm):
    doc, gov = customer_snapshot("acme", owner="Maria Garcia", api=900, promotions=(promotion("api", 5),))
    rm.write_customer(doc, gov)
    assert ids(rm.customers_page(owner="Maria Garcia")) == ["acme"]
    assert [r["customer_id"] for r in rm.expiring(T0, T0 + timedelta(days=14), owner="Maria Garcia").rows] == ["acme"]
    moved, _ = customer_snapshot("acme", owner="Wei Chen", api=900, promotions=(promotion("api", 5),),
                                 fetched_at=T0 + timedelta(minutes=1))
    rm.write_customer(moved, None)
    for owner, listed in (("Maria Garcia", []), ("Wei Chen", ["acme"])):
        assert ids(rm.customers_page(owner=owner)) == listed
        assert ids(rm.customers_page(owner=owner, plan="pro", status="ACTIVE", sort="utilization")) == listed
        assert [r["customer_id"] for r in rm.expiring(T0, T0 + timedelta(days=14), owner=owner).rows] == listed
    # the owner taken off the customer: only the whole lists have it
    gone, _ = customer_snapshot("acme", api=900, promotions=(promotion("api", 5),),
                                fetched_at=T0 + timedelta(minutes=2))
    rm.write_customer(gone, None)
    assert ids(rm.customers_page(owner="Wei Chen")) == [] and ids(rm.customers_page()) == ["acme"]
    assert rm.expiring(T0, T0 + timedelta(days=14), owner="Wei Chen").total == 0
    assert list(rm.r.scan_iter(match=rm.prefix + "*owner*")) == []


def test_the_owner_is_matched_stripped_with_its_case_kept(rm):
    rm.write_customer(*customer_snapshot("padded", owner="  Maria Garcia\t"))
    rm.write_customer(*customer_snapshot("lower", owner="maria garcia"))
    assert ids(rm.customers_page(owner="Maria Garcia")) == ["padded"]
    assert ids(rm.customers_page(owner=" Maria Garcia ")) == ["padded"]
    assert ids(rm.customers_page(owner="maria garcia")) == ["lower"]


def test_a_removed_customer_leaves_no_owner_key_behind(rm):
    rnd = random.Random(3)
    written = {f"c{i}": random_customer(rnd, f"c{i}") for i in range(30)}
    for doc, gov in written.values():
        rm.write_customer(doc, gov)
    assert list(rm.r.scan_iter(match=rm.prefix + "customers:order:*:owner:*"))
    rm.remove_customers(list(written))
    assert list(rm.r.scan_iter(match=rm.prefix + "customers:order:*")) == []
    assert list(rm.r.scan_iter(match=rm.prefix + "promo:*")) == []
    assert rm.customers_page(owner=OWNERS[0]).total == 0
