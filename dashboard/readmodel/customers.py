"""Customers: the document each customer page reads, and the list's index (sort orders
per account owner, plan and status filter, with the search text in each member) — written
together, one customer at a time, atomically.

The customers list has one sort order per filter: every customer is in the unfiltered
order, in its plan's, in its status's and in its plan-and-status's ({p} and {s} casefolded,
percent-quoted; a customer without a subscription is only in the unfiltered ones), and,
when it has an account owner, in that owner's copy of each ("My accounts": the default
list of a customer-success manager stays one range read, filtered or searched as any
other; the owner as its metadata gives it, stripped, case kept: documents.account_owner).
The near-limit index's per-owner set of customer ids (near:customers:owner:{o}) cannot
serve here: it has no order, and the order's members are not ids. Its
member there holds its search text (id, name and email, casefolded, \\0 and \\x1f replaced,
each once: see _index_entry). A search is answered by each web process's own index of that
text (search.py), which follows the list's changes through a log written here.

Every customer write is one MULTI/EXEC under WATCH of that customer's own keys, so a reader
never sees half an update and a task may run twice. Reads never write.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Sequence

import redis

from .base import Store
from .documents import CustomerDocument, IndexEntry, account_owner
from .governance import (
    GovernanceWrite, empty_governance, members_of, queue_forget_governance, queue_governance,
)
from .keys import CUSTOMER_SORTS
from .nearlimit import Facets, customer_facets, facets_of, queue_facets
from .packed import pack, unpack
from .promotions import promotion_members_of, queue_promotions
from .search import index_for, queue_logged_change
from .rankings import entitlement_members_of, queue_forget_members, queue_rankings
from .values import CustomerPage, CustomerRow, as_str, epoch, iso, parse_time, to_json

# Customers with no metered entitlement sort last by utilization.
NO_UTILIZATION_SCORE = -1.0

# A search by utilization matching more customers than search.SORT_BY_SCORE: walk the
# filter's utilization order (each member holds its search text, _index_entry) in chunks,
# highest first, until the page is full; so its cost follows how far down the page is,
# not how many customers there are. KEYS: order zset. ARGV: needle, offset, limit.
_WALK_BY_UTILIZATION = r"""
local needle, first = ARGV[1], tonumber(ARGV[2]) + 1
local last = first + tonumber(ARGV[3]) - 1
local found, page, start = 0, {}, 0
while true do
  local chunk = redis.call('zrevrange', KEYS[1], start, start + 999)
  if #chunk == 0 then return page end
  for _, m in ipairs(chunk) do
    if string.find(m, needle, 1, true) then
      found = found + 1
      if found >= first then page[#page + 1] = m end
      if found >= last then return page end
    end
  end
  start = start + 1000
end
"""



def _stub_document(customer_id: str) -> CustomerDocument:
    """A customer we know of but never fetched successfully: pages show "never synced"."""
    return {
        "id": customer_id,
        "profile": {"id": customer_id, "name": None, "email": None, "created_at": None,
                    "updated_at": None, "archived_at": None, "metadata": {}},
        "subscriptions": [], "plan_id": None, "plan_name": None, "status": None,
        "access_denied_reason": None,
        "entitlements": {"boolean": [], "configuration": [], "metered": []},
        "promotions": {"active": [], "expired": []},
        "governance_enabled": False, "governance": empty_governance(False)["summary"], "highest_utilization": None,
        "stigg": None,
        "fetched_at": None, "error": None, "error_at": None,
    }

class Customers(Store):
    """Customer documents and the customer list."""

    # --- writes -----------------------------------------------------------------------

    def write_customer(self, snapshot: CustomerDocument, governance: GovernanceWrite | None = None) -> bool:
        """Write one customer whole, atomically, with its governance hierarchy when given
        (None: the stored one stays). False when a newer snapshot is already there (a slow
        refresh finishing after a faster one must not roll the data back)."""
        cid = snapshot["id"]
        fetched = parse_time(snapshot["fetched_at"])
        if fetched is None:
            raise ValueError("a snapshot to write needs fetched_at")

        def write(pipe: redis.client.Pipeline) -> bool:
            current = pipe.zscore(self.keys.fetched_at(), cid)
            if current is not None and current > epoch(fetched):
                return False
            old_members = entitlement_members_of(pipe, self.keys, cid)
            old_entry = self._index_entry_of(pipe, cid)
            old_budgets = members_of(pipe, self.keys, cid) if governance is not None else set()
            # Plan and owner are looked up per customer (nearlimit.py): rewriting this one
            # field moves all its rows, the hierarchy rewritten or not.
            old_facets = facets_of(pipe, self.keys, cid)
            old_promotions = promotion_members_of(pipe, self.keys, cid)
            budgets = (sum(len(n["budgets"]) for n in governance["nodes"].values()) if governance is not None
                       else self._budget_count(pipe, cid, old_facets))
            pipe.multi()
            self._queue_customer(pipe, snapshot, old_members, old_entry)
            if governance is not None:
                queue_governance(pipe, self.keys, cid, governance, old_budgets)
            queue_facets(pipe, self.keys, cid, old_facets, customer_facets(snapshot, self.owner_key, budgets))
            queue_promotions(pipe, self.keys, snapshot, cid, old_promotions, account_owner(snapshot, self.owner_key))
            return True

        return self._transaction(write, cid)

    def touch_customer(self, previous: CustomerDocument, fetched_at: datetime) -> bool:
        """Stigg was read again and nothing changed: record the time, without rewriting the
        document or the rankings (most customers, most sweeps). False if a newer fetch
        already happened, like write_customer."""
        cid = previous["id"]

        def write(pipe: redis.client.Pipeline) -> bool:
            current = pipe.zscore(self.keys.fetched_at(), cid)
            if current is not None and current > epoch(fetched_at):
                return False
            pipe.multi()
            pipe.zadd(self.keys.fetched_at(), {cid: epoch(fetched_at)})
            pipe.hset(self.keys.rows(), cid, to_json(_row_doc(previous, iso(fetched_at))))
            return True

        return self._transaction(write, cid)

    def mark_customer_error(self, customer_id: str, message: str, at: datetime) -> None:
        """Record a failed refresh, keeping the last good data (or a stub if there is none)."""

        def write(pipe: redis.client.Pipeline) -> None:
            raw = pipe.get(self.keys.customer(customer_id))
            doc: CustomerDocument = unpack(raw) if raw else _stub_document(customer_id)
            old_members = entitlement_members_of(pipe, self.keys, customer_id)
            old_entry = self._index_entry_of(pipe, customer_id)
            old_facets = facets_of(pipe, self.keys, customer_id)
            budgets = self._budget_count(pipe, customer_id, old_facets)
            doc["error"], doc["error_at"] = message[:2000], iso(at)
            pipe.multi()
            self._queue_customer(pipe, doc, old_members, old_entry)
            queue_facets(pipe, self.keys, customer_id, old_facets, customer_facets(doc, self.owner_key, budgets))

        self._transaction(write, customer_id)

    def remove_customers(self, ids: Sequence[str]) -> int:
        """Delete everything of customers that disappeared from Stigg. Returns how many."""
        removed = 0
        for cid in ids:
            def write(pipe: redis.client.Pipeline, cid: str = cid) -> bool:
                existed = pipe.hexists(self.keys.rows(), cid)
                members = entitlement_members_of(pipe, self.keys, cid)
                budgets = members_of(pipe, self.keys, cid)
                entry = self._index_entry_of(pipe, cid)
                facets = facets_of(pipe, self.keys, cid)
                promotions = promotion_members_of(pipe, self.keys, cid)
                pipe.multi()
                queue_promotions(pipe, self.keys, None, cid, promotions)
                queue_forget_members(pipe, self.keys, members)
                queue_forget_governance(pipe, self.keys, cid, budgets)
                queue_facets(pipe, self.keys, cid, facets, None)
                pipe.delete(self.keys.customer(cid), self.keys.members(cid), self.keys.history(cid))
                pipe.hdel(self.keys.rows(), cid)
                if entry:
                    self._queue_index(pipe, cid, entry, None, 0.0)
                for key in (self.keys.fetched_at(), self.keys.changed()):
                    pipe.zrem(key, cid)
                pipe.srem(self.keys.errored(), cid)
                return bool(existed)

            removed += int(self._transaction(write, cid))
        return removed


    def _budget_count(self, pipe: Any, customer_id: str, facets: Facets | None) -> int:
        """How many budget members the customer has now (its hierarchy is not rewritten)."""
        return facets.budgets if facets is not None else len(members_of(pipe, self.keys, customer_id))

    def _index_entry_of(self, pipe: Any, customer_id: str) -> IndexEntry | None:
        raw = pipe.hget(self.keys.indexed(), customer_id)
        return json.loads(raw) if raw else None

    def _queue_customer(self, pipe: Any, doc: CustomerDocument, old_members: set[str],
                        old_entry: IndexEntry | None) -> None:
        """Queue every command that writes one customer (inside MULTI); the old members and
        list-index entry were read under WATCH before MULTI."""
        cid = doc["id"]
        queue_rankings(pipe, self.keys, doc, old_members)
        pipe.set(self.keys.customer(cid), pack(doc))
        pipe.hset(self.keys.rows(), cid, to_json(_row_doc(doc, doc["fetched_at"])))
        hu = doc["highest_utilization"]
        self._queue_index(pipe, cid, old_entry, _index_entry(doc, account_owner(doc, self.owner_key)),
                          NO_UTILIZATION_SCORE if hu is None else hu)
        fetched = parse_time(doc["fetched_at"])
        pipe.zadd(self.keys.fetched_at(), {cid: epoch(fetched) if fetched else 0.0})
        if doc["error"]:
            pipe.sadd(self.keys.errored(), cid)
        else:
            pipe.srem(self.keys.errored(), cid)

    def _queue_index(self, pipe: Any, cid: str, old: IndexEntry | None, new: IndexEntry | None,
                     utilization: float) -> None:
        """Move a customer from its old place in the list's sort orders to its new one (None:
        nowhere). A member is removed only where it would not be overwritten in place."""
        for sort in CUSTOMER_SORTS:
            new_member = new["members"][sort] if new else None
            new_keys = [self.keys.order(sort, p, s, o) for p, s, o in _filter_scopes(new)]
            for p, s, o in _filter_scopes(old):
                key = self.keys.order(sort, p, s, o)
                if old and (key not in new_keys or old["members"][sort] != new_member):
                    pipe.zrem(key, old["members"][sort])
            if new_member is not None:
                for key in new_keys:
                    pipe.zadd(key, {new_member: utilization if sort == "utilization" else 0.0})
        if new is None:
            pipe.hdel(self.keys.indexed(), cid)
        else:
            pipe.hset(self.keys.indexed(), cid, to_json(new))
        if new != old:
            queue_logged_change(pipe, self.keys, cid)

    # --- reads ------------------------------------------------------------------------

    def customer(self, customer_id: str) -> CustomerDocument | None:
        """The customer's document, with ``fetched_at`` the last time Stigg was read for it
        (a refresh that found nothing changed only moves that time: see touch_customer)."""
        pipe = self.r.pipeline(transaction=True)
        pipe.get(self.keys.customer(customer_id))
        pipe.zscore(self.keys.fetched_at(), customer_id)
        raw, score = pipe.execute()
        if not raw:
            return None
        doc: CustomerDocument = unpack(raw)
        written = parse_time(doc["fetched_at"])
        if score and written is not None and score > epoch(written):
            doc["fetched_at"] = iso(datetime.fromtimestamp(score, timezone.utc))
        return doc

    def customer_ids(self) -> list[str]:
        return [as_str(k) for k in self.r.hkeys(self.keys.rows())]

    def customer_count(self) -> int:
        return int(self.r.hlen(self.keys.rows()))

    def customers_page(
        self,
        search: str = "",
        plan: str | None = None,
        status: str | None = None,
        sort: str = "name",
        offset: int = 0,
        limit: int = 50,
        owner: str | None = None,
    ) -> CustomerPage:
        """One page of the customers list; ``owner``: only that account owner's customers
        (My accounts).

        Every owner / plan / status filter has its own sort order (see the module docstring), so
        without search the page is a rank range on one sorted set (O(log N + limit)). A
        search is found in this process's search index (search.py): the total (a lower
        bound past search.COUNT_CAP, ``more``) and the page's ids, then their rows.
        """
        offset, limit = max(0, offset), max(1, min(limit, 500))
        key = self.keys.order(sort, _clean(plan), _clean(status), (owner or "").strip())
        reverse = sort == "utilization"
        needle = search.strip().casefold()
        if not needle:
            pipe = self.r.pipeline(transaction=True)
            pipe.zcard(key)
            (pipe.zrevrange if reverse else pipe.zrange)(key, offset, offset + limit - 1)
            total, members = pipe.execute()
        elif "\0" in needle or "\x1f" in needle:
            total, members = 0, []  # cleaned text never holds them (and they separate a member's parts)
        else:
            return self._search(needle, key, (_clean(plan), _clean(status), (owner or "").strip()), reverse,
                                offset, limit)
        id_of = id_of_utilization_member if reverse else _id_of_name_member
        return self._page([id_of(as_str(m)) for m in members], int(total), False, offset, limit)

    def _search(self, needle: str, key: str, scope: tuple[str, str, str], by_utilization: bool, offset: int,
                limit: int) -> CustomerPage:
        """One page of the customers whose id, name or email holds ``needle`` (cleaned), in
        the scope's ``key`` order, from this process's search index (search.py)."""
        index = index_for(self.r, self.keys)
        with index.lock:
            index.refresh(self.r, self.keys)
            found = index.find(needle.replace("\n", " "), scope, not by_utilization, offset, limit)
        if not by_utilization:
            ids = found.name_page
        elif found.ids is not None:  # few: their scores, sorted as ZREVRANGE would (member order on ties)
            scores = self.r.zmscore(self.keys.order("utilization"), [m for _, m in found.ids]) if found.ids else []
            ranked = sorted(((score, member, cid) for (cid, member), score in zip(found.ids, scores)
                             if score is not None), reverse=True)
            ids = [cid for _, _, cid in ranked[offset:offset + limit]]
        else:
            members = self.r.eval(_WALK_BY_UTILIZATION, 1, key, needle, offset, limit)
            ids = [id_of_utilization_member(as_str(m)) for m in members]
        return self._page(ids, found.total, found.more, offset, limit)

    def _page(self, ids: list[str], total: int, more: bool, offset: int, limit: int) -> CustomerPage:
        return CustomerPage(
            rows=self.customer_rows(ids), total=total, offset=offset, limit=limit,
            next_offset=offset + limit if offset + limit < total or (more and len(ids) == limit) else None,
            prev_offset=max(0, offset - limit) if offset > 0 else None, more=more,
        )

    def customer_rows(self, ids: Sequence[str]) -> list[CustomerRow]:
        if not ids:
            return []
        out = []
        for cid, raw in zip(ids, self.r.hmget(self.keys.rows(), list(ids))):
            if raw is None:
                continue  # removed between the two reads
            d = json.loads(raw)
            out.append(CustomerRow(
                id=cid, name=d["name"], email=d["email"], plan_id=d["plan_id"], plan_name=d["plan_name"],
                status=d["status"], highest_utilization=d["highest_utilization"], archived=d["archived"],
                fetched_at=parse_time(d["fetched_at"]), error=d["error"], error_at=parse_time(d["error_at"]),
            ))
        return out



def _clean(text: str | None) -> str:
    # The separators below must never appear inside a field (hostile names from Stigg).
    return (text or "").replace("\x1f", " ").replace("\0", " ").casefold()


def _row_doc(doc: CustomerDocument, fetched_at: str | None) -> dict[str, Any]:
    """The customer's row in the list index."""
    profile = doc["profile"]
    return {"name": profile["name"], "email": profile["email"], "plan_id": doc["plan_id"],
            "plan_name": doc["plan_name"], "status": doc["status"], "highest_utilization": doc["highest_utilization"],
            "archived": profile["archived_at"] is not None, "fetched_at": fetched_at, "error": doc["error"],
            "error_at": doc["error_at"]}


def _index_entry(doc: CustomerDocument, owner: str) -> IndexEntry:
    """A customer's members of the sort orders: "{name}\\0{id}\\0{rest}" and "{id}\\0{rest}".

    Search is a case-insensitive substring of the id, the name or the email, and a member
    holds each of them (cleaned), so a search reads nothing but the sort order. ``rest``
    holds only what the member's other parts lack, because shorter members are faster to
    scan (measured: a sixth less time at 50 bytes than at 80). The raw id stands for the cleaned
    one when they are equal; it never matches where the cleaned id would not (a needle is
    casefolded, holds no \\0 or \\x1f, and casefolding maps each character alone).
    \\0 separates the parts: cleaned text never holds it, the raw id may, hence "first \\0"
    and "last \\0" in _id_of_*."""
    cid, profile = doc["id"], doc["profile"]
    clean_id, name, email = _clean(cid), _clean(profile["name"]), _clean(profile["email"])
    own_id = [clean_id] if clean_id != cid else []
    name_rest = "\x1f".join([*own_id, email]) if name else email
    utilization_rest = "\x1f".join([*own_id, name, email])
    # Customers without a name sort by id, among the others; the id after the name makes the
    # order total (ties on the name go by id), as the id first does among equal utilizations.
    return {"plan": _clean(doc["plan_id"]), "status": _clean(doc["status"]), "owner": owner,
            "members": {"name": f"{name or clean_id}\0{cid}\0{name_rest}",
                        "utilization": f"{cid}\0{utilization_rest}"}}


def _id_of_name_member(member: str) -> str:
    return member[member.index("\0") + 1:member.rindex("\0")]


def id_of_utilization_member(member: str) -> str:
    return member[:member.rindex("\0")]


def _filter_scopes(entry: IndexEntry | None) -> list[tuple[str, str, str]]:
    """The (plan, status, owner) filters a customer is listed under; "" means any."""
    if entry is None:
        return []
    plan, status, owner = entry["plan"], entry["status"], entry.get("owner", "")
    return [(p, s, o) for o in dict.fromkeys(("", owner)) for p in dict.fromkeys(("", plan))
            for s in dict.fromkeys(("", status))]


