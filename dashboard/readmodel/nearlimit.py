"""Near-limit: every governance budget and metered entitlement of the fleet at or above a
utilization, in one of three orders, filtered by customer, capability, entity type, plan
and account owner — read from the fleet rankings, never by scanning customers.

The index is the fleet rankings themselves (keys.py), one sorted set per kind and order:

    rank:budgets:{utilization|usage|urgency}         "{customer}|{entity}|{scope}|c={capability}|t={type}|"
    rank:entitlements, rank:entitlements:{usage|urgency}   "{customer}|c={feature}|"

each part percent-encoded (``part``), scores negated: an ascending range read is highest
first, ties in member order (customer id first), and "at or above t" is the score range
[-inf, -t]. The row's own facets (capability, entity type) are in its member, so a filter
on them is a plain substring test (``|c=…|`` can only match the capability: an encoded part
holds neither "|" nor "="). The customer's facets (plan, owner) are not: they are looked up
once per customer a read meets (``near:facets``), so a plan or owner change moves every row
of the customer by rewriting one hash field — even when the hierarchy itself is not
rewritten (``write_customer(doc, governance=None)``).

Per plan and per owner, ``near:customers:{facet}:{value}`` holds the customers having it;
per value of every facet, ``near:values:{facet}`` counts them (the filter choices); ``near:values:{facet}:b`` and
``:e`` count those whose budgets, or entitlements, have it, so a ranking no row of which can
match (entitlements for an entity type or a currency, budgets for a plan nobody governs)
is never read. A query is planned (``near_limit_members``):

* a customer: its own rows (its hierarchy's index, customer:{id}:members), filtered,
  scored in one round trip and sorted here — exact total;
* a capability or entity type that is rare (at most a few thousand members,
  nearlimit_rare.py): the members listed for it, filtered (the other facets as the walk
  tests them), scored and sorted the same way — exact total, however low the threshold and
  wherever in the order its rows sit;
* a plan or owner whose customers are few (their rows at most PER_CUSTOMER_MAX_ROWS):
  those customers' own rows, as for one customer;
* otherwise one read-only script walks the two rankings of the order at once (a merge: the
  lower score first, budgets first on a tie), from the top — or, by usage for a capability
  or entity type, from where its rows can begin (nearlimit_bounds.py) — testing each
  member, and stops
  as soon as the page and one more row are found. By utilization the walk is the range at
  or above the threshold; by usage or urgency it looks up each candidate's utilization. A
  walk scans at most SCAN_PER_CALL members per script call, so Redis is never held long;
  the rest continues from where the call stopped. Unfiltered, the total is two ZCOUNTs;
  filtered, it is known only when the walk reached the end.

Rows are read back from what pages already read (nodes, the entitlement rows, the list's
rows): the index adds no copy of them. Measured in bench/bench_near_limit.py.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence
from urllib.parse import unquote

from .base import Store
from .documents import account_owner
from .keys import BUDGET_RANKINGS, NEAR_FACETS, Keys, part
from .nearlimit_bounds import BOUNDED_ORDERS
from .nearlimit_near import NEAR, near_list, walk_ranking
from .nearlimit_rare import rare_list
from .nearlimit_scripts import RARE_SCRIPT, WALK_SCRIPT
from .packed import unpack
from .values import as_str

if TYPE_CHECKING:
    from .documents import CustomerDocument

ORDERS = BUDGET_RANKINGS
DEFAULT_OWNER_KEY = "accountOwner"
# A filter whose customers are at most this many, with at most this many rows between them,
# is answered from those customers' own rows (measured: bench/bench_near_limit.py).
PER_CUSTOMER_MAX_CUSTOMERS = 100
# The facets a customer has one value of, whose customers are listed per value. (A customer
# has rows of many capabilities and entity types: listing it under each cost more memory
# than reading a rare one's rows from the rankings saves time.)
CUSTOMER_FACETS = ("plan", "owner")
PER_CUSTOMER_MAX_ROWS = 5000
SCAN_PER_CALL = 20_000

# --- members and facets ---------------------------------------------------------------------


def budget_member(customer_id: str, entity_id: str, capability: str, scope: Sequence[str], entity_type: str) -> str:
    return (f"{part(customer_id)}|{part(entity_id)}|{','.join(part(s) for s in scope)}"
            f"|c={part(capability)}|t={part(entity_type)}|")


def entitlement_member(customer_id: str, feature_id: str) -> str:
    return f"{part(customer_id)}|c={part(feature_id)}|"


def split_budget_member(member: str) -> tuple[str, str, str, tuple[str, ...], str]:
    """(customer, entity, capability, scope, entity type) of a budget's member."""
    cid, eid, scope, capability, entity_type, _ = member.split("|")
    return (unquote(cid), unquote(eid), unquote(capability[2:]),
            tuple(unquote(s) for s in scope.split(",")) if scope else (), unquote(entity_type[2:]))


def join_members(members: Iterable[str]) -> str:
    """A customer's ranking members as one string, one a line (a member holds no newline)."""
    return "\n".join(sorted(members))


def split_members(raw: Any) -> set[str]:
    return set(as_str(raw).split("\n")) if raw else set()


def split_entitlement_member(member: str) -> tuple[str, str]:
    cid, feature, _ = member.split("|")
    return unquote(cid), unquote(feature[2:])


@dataclass(frozen=True)
class Facets:
    """What a customer is filtered by: its plan and account owner; the capabilities and
    entity types its ranked rows have, per kind; and how many rows of each kind it has."""

    plan: str
    owner: str
    budget_capabilities: tuple[str, ...] = ()
    entitlement_capabilities: tuple[str, ...] = ()
    entity_types: tuple[str, ...] = ()
    budgets: int = 0  # its budget members of the rankings
    entitlements: int = 0  # its entitlement members

    @property
    def rows(self) -> int:
        return self.budgets + self.entitlements

    def values(self, facet: str, kind: str = "") -> set[str]:
        """Its values of a facet: all of them (``kind`` ""), or those its budgets ("b") or
        its entitlements ("e") have (plan and owner: when it has rows of that kind)."""
        if facet in ("plan", "owner"):
            value = self.plan if facet == "plan" else self.owner
            has = {"": True, "b": self.budgets > 0, "e": self.entitlements > 0}[kind]
            return {value} if value and has else set()
        if facet == "capability":
            return set({"": (*self.budget_capabilities, *self.entitlement_capabilities),
                        "b": self.budget_capabilities, "e": self.entitlement_capabilities}[kind])
        return set(self.entity_types) if kind != "e" else set()

    def encode(self) -> str:
        return "|".join((part(self.plan), part(self.owner), ",".join(map(part, self.budget_capabilities)),
                         ",".join(map(part, self.entitlement_capabilities)), ",".join(map(part, self.entity_types)),
                         str(self.budgets), str(self.entitlements)))

    @classmethod
    def decode(cls, raw: str) -> "Facets":
        plan, owner, bcaps, ecaps, types, budgets, entitlements = raw.split("|")

        def many(text: str) -> tuple[str, ...]:
            return tuple(unquote(v) for v in text.split(",") if v)

        return cls(unquote(plan), unquote(owner), many(bcaps), many(ecaps), many(types), int(budgets),
                   int(entitlements))


def customer_facets(doc: CustomerDocument, owner_key: str = DEFAULT_OWNER_KEY, budgets: int = 0) -> Facets:
    """The facets of a customer's document; ``budgets``: how many budget members it has
    in the rankings (its hierarchy is written apart)."""
    summary = doc["governance"]
    ranked = sorted({e["feature_id"] for e in doc["entitlements"]["metered"] if e["utilization"] is not None})
    return Facets(doc["plan_id"] or "", account_owner(doc, owner_key),
                  tuple(sorted(summary["capabilities"])) if budgets else (), tuple(ranked),
                  tuple(sorted(summary["types"])) if budgets else (), budgets,
                  sum(1 for e in doc["entitlements"]["metered"] if e["utilization"] is not None))


def facets_of(pipe: Any, keys: Keys, customer_id: str) -> Facets | None:
    """The customer's stored facets (read under WATCH, before MULTI)."""
    raw = as_str(pipe.hget(keys.near_facets(), part(customer_id)))
    return Facets.decode(raw) if raw is not None else None


def queue_facets(pipe: Any, keys: Keys, customer_id: str, old: Facets | None, new: Facets | None) -> None:
    """Queue (inside MULTI) the moves of a customer between facet values. Only this
    customer's transactions write its facets, so ``old`` (read under WATCH) is exact and a
    replayed write changes nothing."""
    if old == new:
        return
    for facet in NEAR_FACETS:
        for kind in ("", "b", "e"):
            before, after = old.values(facet, kind) if old else set(), new.values(facet, kind) if new else set()
            listed = not kind and facet in CUSTOMER_FACETS
            for value in before - after:
                pipe.zincrby(keys.near_values(facet, kind), -1, value)
                if listed:
                    pipe.srem(keys.near_customers(facet, value), customer_id)
            for value in after - before:
                pipe.zincrby(keys.near_values(facet, kind), 1, value)
                if listed:
                    pipe.sadd(keys.near_customers(facet, value), customer_id)
            if before - after:
                pipe.zremrangebyscore(keys.near_values(facet, kind), "-inf", 0)
    if new is None:
        pipe.hdel(keys.near_facets(), part(customer_id))
    else:
        pipe.hset(keys.near_facets(), part(customer_id), new.encode())


# --- queries -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NearLimitQuery:
    """What the near-limit page asks: rows at or above ``min_utilization`` (0.8 = 80 %) in
    ``order``, each filter None for any. An entity type filter excludes entitlements (they
    belong to no entity)."""

    min_utilization: float = 0.8
    order: str = "utilization"
    customer: str | None = None
    capability: str | None = None
    entity_type: str | None = None
    plan: str | None = None
    owner: str | None = None

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ValueError(f"near-limit rows order by utilization, usage or urgency, not {self.order!r}")


@dataclass(frozen=True)
class Found:
    """Ranking members (each prefixed "b" or "e") of one page, and what is known around it."""

    items: list[str]
    total: int | None  # None: not counted (a filtered walk that stopped early)
    has_more: bool


class NearLimitIndex(Store):
    """The near-limit reads over the rankings (the rows: nearlimit_rows.py)."""

    def near_limit_members(self, query: NearLimitQuery, offset: int = 0, limit: int = 50) -> Found:
        rare = self._rare(query, offset, limit)
        if rare is not None:
            return rare
        ranked = self._ranked(query)
        if ranked is not None:
            return Found(ranked[offset:offset + limit], len(ranked), offset + limit < len(ranked))
        items, more, matched, exhausted, _ = self._walk(query, offset, limit, ("", "", "", ""))
        total = None
        if not _filtered(query):
            pipe = self.r.pipeline(transaction=False)
            for kind in ("budgets", "entitlements"):
                pipe.zcount(self._ranking(kind, "utilization"), "-inf", -query.min_utilization)
            total = sum(int(n) for n in pipe.execute())
        elif exhausted:
            total = matched
        return Found(items, total, more)

    def iter_near_limit_members(self, query: NearLimitQuery, batch: int = 500) -> Iterator[list[str]]:
        """Every matching member, a batch at a time, in order: a walk resumes after the last
        member it returned (by score and member, so rows other writers move meanwhile shift
        nothing but themselves)."""
        rare = self._rare(query, 0, -1)
        ranked = rare.items if rare is not None else self._ranked(query)
        if ranked is not None:
            for start in range(0, len(ranked), batch):
                yield ranked[start:start + batch]
            return
        cursor = ("", "", "", "")
        while True:
            items, more, _, _, cursor = self._walk(query, 0, batch, cursor)
            if items:
                yield items
            if not more:
                return

    def near_limit_choices(self) -> dict[str, list[tuple[str, int]]]:
        """Per facet, the values customers have and how many customers have each."""
        pipe = self.r.pipeline(transaction=False)
        for facet in NEAR_FACETS:
            pipe.zrange(self.keys.near_values(facet), 0, -1, withscores=True)
        return {facet: sorted((as_str(v), int(n)) for v, n in found)
                for facet, found in zip(NEAR_FACETS, pipe.execute())}

    # --- planning ----------------------------------------------------------------------------

    def _ranking(self, kind: str, order: str) -> str:
        return self.keys.rank_budgets(order) if kind == "budgets" else self.keys.rank_entitlements(order)

    def _script(self, name: str, text: str) -> Any:
        """A script sent once, then called by its digest (EVALSHA)."""
        scripts = self.__dict__.setdefault("_near_scripts", {})
        if name not in scripts:
            scripts[name] = self.r.register_script(text)
        return scripts[name]

    def near_limit_strategy(self, query: NearLimitQuery) -> str:
        """How a query is read: "rare" (a rare value's listed rows), "near" (a value's few
        rows at or above NEAR), "customers" (a customer's, or a few customers', own rows) or
        "walk" (the rankings); for the bench and tests."""
        chosen = _chosen(query)
        listed = self._listed(query) if query.customer is None else None
        if listed is not None:
            return listed[1]
        return "walk" if self._plan(query, chosen) is None else "customers"

    def _listed(self, query: NearLimitQuery) -> tuple[str, str] | None:
        """The smallest list of members that holds every row a query on a capability or
        entity type can match, and which: (a rare value's list, "rare"), or at or above NEAR
        (a value's near set when it is small, "near"); key "" when nothing can match; None
        to read the query otherwise."""
        chosen = _chosen(query)
        rare = rare_list(self.r, self.keys, chosen)
        listed = None if rare is None else (rare[0], "rare")
        if (rare is not None and rare[0] == "") or query.min_utilization < NEAR:
            return listed
        near = near_list(self.r, self.keys, chosen)
        if near is None:
            return listed
        near_key, size = near
        if size == 0:
            return "", "near"  # no row of the value is near its limit: none is at the threshold
        if rare is None or size < rare[1]:
            return near_key, "near"
        return listed

    def _rare(self, query: NearLimitQuery, skip: int, limit: int) -> Found | None:
        """One page (``limit`` -1: all) of a query on a rare capability or entity type, or
        on one with few rows near their limit, answered in Redis from the listed members
        (nearlimit_rare.py, nearlimit_near.py); None when no chosen value is listed (or its
        list was dropped meanwhile: then the query is read otherwise)."""
        if query.customer is not None:
            return None  # its own rows are fewer
        listed = self._listed(query)
        if listed is None:
            return None
        key = listed[0]
        if key == "":
            return Found([], 0, False)
        keys = [key, *self._order_keys(query.order), self.keys.near_facets()]
        listed, total, page = self._script("rare", RARE_SCRIPT)(keys, [
            -query.min_utilization, "1" if query.order == "utilization" else "0", *self._tokens(query),
            part(query.plan) if query.plan is not None else "", part(query.owner) if query.owner is not None else "",
            "1" if query.plan is not None else "0", "1" if query.owner is not None else "0", skip, limit])
        if not int(listed):
            return None
        return Found([as_str(m) for m in page], int(total), limit >= 0 and skip + limit < int(total))

    def _ranked(self, query: NearLimitQuery) -> list[str] | None:
        """Every matching member, in order, when the query's rows are those of a customer
        or a few customers (a rare plan or owner): read whole; None to walk the rankings."""
        candidates = self._plan(query, _chosen(query))
        return self._per_customer(query, candidates) if candidates is not None else None

    def _plan(self, query: NearLimitQuery, chosen: list[tuple[str, str]]) -> list[str] | None:
        """The customers whose own members answer the query, or None to walk the rankings."""
        if query.customer is not None:
            facets = as_str(self.r.hget(self.keys.near_facets(), part(query.customer)))
            if facets is None:
                return []
            have = Facets.decode(facets)
            return [query.customer] if all(value in have.values(facet) for facet, value in chosen) else []
        sets = [self.keys.near_customers(facet, value) for facet, value in chosen if facet in CUSTOMER_FACETS]
        if not sets:
            return None
        if int(self.r.execute_command("SINTERCARD", len(sets), *sets, "LIMIT",
                                      PER_CUSTOMER_MAX_CUSTOMERS + 1)) > PER_CUSTOMER_MAX_CUSTOMERS:
            return None  # many customers have it: the walk finds their rows soon enough
        ids = sorted(as_str(c) for c in self.r.sinter(sets))
        if not ids:
            return []
        facets = self.r.hmget(self.keys.near_facets(), [part(c) for c in ids])
        rows = sum(Facets.decode(as_str(f)).rows for f in facets if f)
        return ids if rows <= PER_CUSTOMER_MAX_ROWS else None

    def _tokens(self, query: NearLimitQuery) -> list[str]:
        return [f"|c={part(query.capability)}|" if query.capability is not None else "",
                f"|t={part(query.entity_type)}|" if query.entity_type is not None else ""]

    def _order_keys(self, order: str) -> list[str]:
        return [self._ranking("budgets", order), self._ranking("entitlements", order),
                self._ranking("budgets", "utilization"), self._ranking("entitlements", "utilization")]

    def _per_customer(self, query: NearLimitQuery, customer_ids: Iterable[str]) -> list[str]:
        """The customers' own rows that match, in order: their budgets from their
        hierarchies' index (gov:{id}:index), their entitlements from customer:{id}:members,
        scored in one round trip and sorted here (a few thousand at most)."""
        ids = list(customer_ids)
        pipe = self.r.pipeline(transaction=True)
        for cid in ids:
            pipe.get(self.keys.gov_index(cid))
            pipe.get(self.keys.members(cid))
        replies = pipe.execute()
        budgets, entitlements = [], []
        for cid, index, members in zip(ids, replies[::2], replies[1::2]):
            for eid, entity_type, _, _, _, own in (unpack(index) if index else ()):
                if query.entity_type is not None and entity_type != query.entity_type:
                    continue
                budgets += [budget_member(cid, eid, capability, scope, entity_type) for capability, scope, _, _ in own
                            if query.capability is None or capability == query.capability]
            if query.entity_type is None:
                entitlements += [m for m in split_members(members)
                                 if query.capability is None or split_entitlement_member(m)[1] == query.capability]
        pipe = self.r.pipeline(transaction=True)
        for kind, members in (("budgets", budgets), ("entitlements", entitlements)):
            if members:
                pipe.zmscore(self._ranking(kind, "utilization"), members)
                pipe.zmscore(self._ranking(kind, query.order), members)
        replies = iter(pipe.execute())
        scored = []
        for kind, members in (("b", budgets), ("e", entitlements)):
            if not members:
                continue
            utilizations, scores = next(replies), next(replies)
            scored += [(score if score is not None else math.inf, kind, member)
                       for member, u, score in zip(members, utilizations, scores)
                       if u is not None and u <= -query.min_utilization]
        # by score, budgets before entitlements on a tie, then by member: the walk's order
        scored.sort(key=lambda skm: (skm[0], skm[1], skm[2].encode()))
        return [kind + member for _, kind, member in scored]

    def _kinds(self, query: NearLimitQuery) -> tuple[bool, bool]:
        """Whether budgets, and entitlements, can match at all: a filter value that no
        customer's rows of a kind have (an entity type or a currency for entitlements, a
        plan without governance for budgets) leaves that ranking unread."""
        chosen = _chosen(query)
        if not chosen:
            return True, True
        pipe = self.r.pipeline(transaction=False)
        for kind in ("b", "e"):
            for facet, value in chosen:
                pipe.zscore(self.keys.near_values(facet, kind), value)
        found = pipe.execute()
        return all(v is not None for v in found[:len(chosen)]), all(v is not None for v in found[len(chosen):])

    def _walk(self, query: NearLimitQuery, skip: int, limit: int,
              cursor: tuple[str, str, str, str]) -> tuple[list[str], bool, int, bool, tuple[str, str, str, str]]:
        """(members, one more exists, matches seen, reached the end, cursor after the last)."""
        keys = [walk_ranking(self.keys, "budgets", query.order, query.min_utilization),
                walk_ranking(self.keys, "entitlements", query.order, query.min_utilization),
                *self._order_keys(query.order)[2:], self.keys.near_facets(),
                self.keys.near_bounds("b", query.order), self.keys.near_bounds("e", query.order)]
        budgets, entitlements = self._kinds(query)
        if not (budgets or entitlements):
            return [], False, 0, True, cursor
        items: list[str] = []
        matched_total = 0
        while True:
            before = cursor
            page, lsb, lmb, lse, lme, more_flag, matched, done = self._script("walk", WALK_SCRIPT)(keys, [
                -query.min_utilization, "1" if query.order == "utilization" else "0", *self._tokens(query),
                part(query.plan) if query.plan is not None else "", part(query.owner) if query.owner is not None else "",
                "1" if query.plan is not None else "0", "1" if query.owner is not None else "0", skip,
                limit - len(items), SCAN_PER_CALL, *cursor, "1" if budgets else "0", "1" if entitlements else "0",
                *(token.strip("|") if query.order in BOUNDED_ORDERS else "" for token in self._tokens(query))])
            items += [as_str(m) for m in page]
            matched_total += int(matched)
            skip = max(0, skip - int(matched))
            cursor = (as_str(lsb), as_str(lmb), as_str(lse), as_str(lme))
            more = bool(int(more_flag))
            if int(done) or (cursor == before and not page):  # (no progress: cannot happen, never loop)
                return items, more, matched_total, not more and bool(int(done)), cursor


def _chosen(query: NearLimitQuery) -> list[tuple[str, str]]:
    """The facet filters a query sets, (facet, value)."""
    return [(facet, value) for facet, value in (("plan", query.plan), ("owner", query.owner),
                                                ("capability", query.capability),
                                                ("entity_type", query.entity_type)) if value is not None]


def _filtered(query: NearLimitQuery) -> bool:
    return any(v is not None for v in (query.customer, query.capability, query.entity_type, query.plan,
                                       query.owner))
