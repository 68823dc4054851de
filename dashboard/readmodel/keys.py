"""Every Redis key of the read model, spelled in one place.

All keys live under one prefix (default ``stiggadmin:rm:``): the Celery broker shares the
Redis server, so nothing of ours may live outside it, and ``clear()`` deletes exactly the
prefix.

    layout                               string  the key layout these keys follow (LAYOUT_VERSION)
    catalog                              string  JSON: features, packages, entity types (governance_enabled), fetched_at
    customer:{id}                        string  CustomerDocument, packed (packed.py: JSON, zlib, base64)
    customer:{id}:members                string  its members of the entitlement rankings, one a line
    customer:{id}:history                string  UsageHistoryDoc, packed: usage over time per metered feature
    gov:{id}:nodes, :children, :index    its governance hierarchy (governance.py; nodes and index packed)
    customers:rows                       hash    id -> JSON CustomerRow fields (list pages)
    customers:order:name[:owner:{o}][:plan:{p}][:status:{s}]
                                         zset    score 0, member "{name}\\0{id}\\0{search text}" (lex order)
    customers:order:utilization[:owner:{o}][:plan:{p}][:status:{s}]
                                         zset    member "{id}\\0{search text}" -> highest utilization (-1 when none)
    customers:indexed                    hash    id -> JSON: its plan, status, owner and two order members (to
                                                 remove them)
    search:seq, search:log, search:epoch the list entries' change log each web process's search index
                                         follows (search.py)
    customers:fetched_at                 zset    id -> epoch seconds of last good fetch (0 = never)
    customers:errored                    set     ids whose last refresh failed
    customers:changed                    zset    id -> epoch when "recently changed" expires
    customers:budget_utilization         zset    id -> its governance budget nearest the limit (hot tier)
    promo:ends[:owner:{o}]               zset    "{customer}|{feature}" -> end date: active promotions with one
                                                 (of that account owner's customers)
    promo:rows                           hash    that member -> the row /promotions/expiring shows
    promo:members                        hash    id -> JSON: its owner and members (to remove them)
    rank:entitlements                    zset    "{customer}|c={feature}|" -> -utilization
    rank:entitlements:{usage|urgency}    zset    same member -> -usage, -urgency
    rank:entitlements:rows               hash    member -> JSON: the row pages show
    rank:budgets:utilization             zset    "{customer}|{entity}|{scope}|c={feature or $currency}|t={type}|" -> -utilization
    rank:budgets:usage                   zset    same member -> -current usage
    rank:budgets:urgency                 zset    same member -> -urgency (time to limit before reset)
    rank:{budgets|entitlements}:{usage|urgency}:near
                                         zset    the members at or above 80 % only, same scores
                                                 (nearlimit_near.py)
    near:facets                          hash    part(customer id) -> its facets (nearlimit.Facets.encode)
    near:values:{facet}[:{b|e}]          zset    value -> customers having it (facet: plan, owner, capability,
                                                 entity_type); :b / :e those whose budgets / entitlements have it
    near:customers:{plan|owner}:{value}  set     the customers having it
    near:bounds:{b|e}:usage              hash    "{c|t}={value}|{bucket}" -> members of the kind scoring in
                                                 that bucket of usage (nearlimit_bounds.py)
    near:rows:{capability|entity_type}   zset    value -> ranking members having it (nearlimit_rare.py)
    near:above:{capability|entity_type}:{value}
                                         set     its ranking members ("b" / "e" + member) at or
                                                 above 80 % (nearlimit_near.py)
    near:rare:{capability|entity_type}:{value}
                                         set     while the value is rare: its members, "b"/"e" + member
    near:csv                             hash    the near-limit CSV built by a worker: "at" (epoch seconds),
                                                 "body:" + account owner ("" for every row) -> its file, gzip
                                                 (nearlimit_csv.py); near:csv:next while one is written
    sync:status                          hash    last sweep start/finish/duration/stats
    sync:counters                        hash    errors / rate_limited seen (cumulative)
    lock:customer:{id}                   string  per-customer refresh lock (token, PX expiry)
    lock:sweep, lock:hot                 string  one full sweep, one hot-tier round at a time
    queued:{customer|history}:{id}       string  a refresh of it is queued (PX expiry)
    webhook:seen:{messageId}             string  a webhook delivery already handled (PX expiry)

Ids from Stigg may hold any character (":", "/", "%", spaces, any script, hundreds of
characters), so every id in a key name is percent-encoded ({id} above means ``part(id)``):
customer "acme:history" is ``customer:acme%3Ahistory``, never acme's history. Hash fields
hold ids as they are (but near:facets, keyed like the ranking members); ranking members
join their percent-encoded parts with "|". Ranking scores are negated, so a range read in
ascending order is highest first with ties in member order (customer id first).
"""
from __future__ import annotations

from urllib.parse import quote

DEFAULT_PREFIX = "stiggadmin:rm:"
# Bumped whenever the key layout changes: a sweep that finds another layout empties the
# read model and fills it again from Stigg (it is a cache), instead of reading stale keys.
# 4: ids percent-encoded; 5: governance hierarchies apart from the document; 6: rankings
# carry the near-limit facets, with negated scores, and near:* (nearlimit.py); 7: no
# per-customer budgets sorted set (gov:{id}:budgets; the hierarchy's index serves instead);
# 8: customer documents and usage histories packed (packed.py); 9: near:rows and near:rare
# (a rare capability's or entity type's members, nearlimit_rare.py), near:bounds
# (nearlimit_bounds.py); 10: promotions by end date (promo:*); 11: "My accounts": the list's
# sort orders and the promotions by end date per account owner too, promo:members as JSON;
# 12: governance nodes packed against a preset dictionary, hierarchy indexes packed (packed.py),
# rank:*:{usage|urgency}:near (nearlimit_near.py); 13: near:above:* (nearlimit_near.py)
LAYOUT_VERSION = "13"
CUSTOMER_SORTS = ("name", "utilization")
BUDGET_RANKINGS = ("utilization", "usage", "urgency")
NEAR_FACETS = ("plan", "owner", "capability", "entity_type")
RARE_FACETS = ("capability", "entity_type")  # a row's own facets, whose rare values list their rows


def part(text: str) -> str:
    """One id as a part of a key or member: no ":" or "|" or "," (nor "%" unescaped) is
    left in it, so distinct ids always give distinct keys."""
    return quote(text, safe="")


class Keys:
    """The key names under one prefix: one small method per key."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix

    def layout(self) -> str:
        return f"{self.prefix}layout"

    def catalog(self) -> str:
        return f"{self.prefix}catalog"

    # --- one customer ------------------------------------------------------------------------

    def customer(self, customer_id: str) -> str:
        return f"{self.prefix}customer:{part(customer_id)}"

    def members(self, customer_id: str) -> str:
        return f"{self.prefix}customer:{part(customer_id)}:members"

    def history(self, customer_id: str) -> str:
        return f"{self.prefix}customer:{part(customer_id)}:history"

    # --- the customer list ---------------------------------------------------------------------

    def rows(self) -> str:
        return f"{self.prefix}customers:rows"

    def order(self, sort: str, plan: str = "", status: str = "", owner: str = "") -> str:
        """The customers in ``sort`` order, only those of ``owner``, ``plan`` and ``status``
        when given (cleaned values, the owner as account_owner gives it; quoting keeps a ":"
        in a plan id from reaching the status part)."""
        if sort not in CUSTOMER_SORTS:
            raise ValueError(f"sort by name or utilization, not {sort!r}")
        key = f"{self.prefix}customers:order:{sort}"
        if owner:
            key += f":owner:{part(owner)}"
        if plan:
            key += f":plan:{part(plan)}"
        if status:
            key += f":status:{part(status)}"
        return key

    def indexed(self) -> str:
        return f"{self.prefix}customers:indexed"

    def search_seq(self) -> str:
        return f"{self.prefix}search:seq"

    def search_log(self) -> str:
        return f"{self.prefix}search:log"

    def search_epoch(self) -> str:
        return f"{self.prefix}search:epoch"

    def fetched_at(self) -> str:
        return f"{self.prefix}customers:fetched_at"

    def errored(self) -> str:
        return f"{self.prefix}customers:errored"

    def changed(self) -> str:
        return f"{self.prefix}customers:changed"

    def budget_utilization(self) -> str:
        return f"{self.prefix}customers:budget_utilization"

    # --- fleet rankings ------------------------------------------------------------------------

    def rank_entitlements(self, by: str = "utilization") -> str:
        if by not in BUDGET_RANKINGS:
            raise ValueError(f"entitlements rank by utilization, usage or urgency, not {by!r}")
        return f"{self.prefix}rank:entitlements" + ("" if by == "utilization" else f":{by}")

    def rank_entitlement_rows(self) -> str:
        return f"{self.prefix}rank:entitlements:rows"

    def rank_budgets(self, by: str) -> str:
        if by not in BUDGET_RANKINGS:
            raise ValueError(f"budgets rank by utilization, usage or urgency, not {by!r}")
        return f"{self.prefix}rank:budgets:{by}"

    def rank_near(self, kind: str, by: str) -> str:
        """The rows of a ranking at or above nearlimit_near.NEAR, in ``by`` order (usage, urgency)."""
        if kind not in ("budgets", "entitlements") or by not in ("usage", "urgency"):
            raise ValueError(f"no near ranking of {kind} by {by}")
        return f"{self.prefix}rank:{kind}:{by}:near"

    # --- near-limit facets (nearlimit.py) -----------------------------------------------------

    def near_facets(self) -> str:
        return f"{self.prefix}near:facets"

    def near_values(self, facet: str, kind: str = "") -> str:
        """Customers per value of a facet; of those with budgets ("b") or entitlements ("e")
        having it when ``kind`` is given."""
        if facet not in NEAR_FACETS or kind not in ("", "b", "e"):
            raise ValueError(f"no near-limit facet {facet!r} of kind {kind!r}")
        return f"{self.prefix}near:values:{facet}" + (f":{kind}" if kind else "")

    def near_customers(self, facet: str, value: str) -> str:
        if facet not in NEAR_FACETS:
            raise ValueError(f"no near-limit facet {facet!r}")
        return f"{self.prefix}near:customers:{facet}:{part(value)}"

    def near_bounds(self, kind: str, order: str) -> str:
        if kind not in ("b", "e") or order not in BUDGET_RANKINGS:
            raise ValueError(f"no near-limit bounds of kind {kind!r} in order {order!r}")
        return f"{self.prefix}near:bounds:{kind}:{order}"

    def near_csv(self, staging: bool = False) -> str:
        return f"{self.prefix}near:csv" + (":next" if staging else "")

    def near_rows(self, facet: str) -> str:
        if facet not in RARE_FACETS:
            raise ValueError(f"no rare near-limit facet {facet!r}")
        return f"{self.prefix}near:rows:{facet}"

    def near_rare(self, facet: str, value: str) -> str:
        if facet not in RARE_FACETS:
            raise ValueError(f"no rare near-limit facet {facet!r}")
        return f"{self.prefix}near:rare:{facet}:{part(value)}"

    def near_above(self, facet: str, value: str) -> str:
        """A capability's or entity type's ranking members at or above nearlimit_near.NEAR."""
        if facet not in RARE_FACETS:
            raise ValueError(f"no rare near-limit facet {facet!r}")
        return f"{self.prefix}near:above:{facet}:{part(value)}"

    # --- promotions ending soon (promotions.py) --------------------------------------------------

    def promo_ends(self, owner: str = "") -> str:
        """Active promotions with an end date, scored by it: "{customer}|{feature}" members;
        only those of ``owner``'s customers when given."""
        return f"{self.prefix}promo:ends" + (f":owner:{part(owner)}" if owner else "")

    def promo_rows(self) -> str:
        """Each promo_ends member's row (hash: member -> JSON)."""
        return f"{self.prefix}promo:rows"

    def promo_members(self) -> str:
        """Each customer's promo_ends members and owner (hash: customer id -> JSON)."""
        return f"{self.prefix}promo:members"

    # --- governance hierarchies ---------------------------------------------------------------

    def gov_nodes(self, customer_id: str) -> str:
        return f"{self.prefix}gov:{part(customer_id)}:nodes"

    def gov_children(self, customer_id: str) -> str:
        return f"{self.prefix}gov:{part(customer_id)}:children"

    def gov_index(self, customer_id: str) -> str:
        return f"{self.prefix}gov:{part(customer_id)}:index"

    # --- sync state ------------------------------------------------------------------------------

    def sync_status(self) -> str:
        return f"{self.prefix}sync:status"

    def sync_counters(self) -> str:
        return f"{self.prefix}sync:counters"

    def customer_lock(self, customer_id: str) -> str:
        return f"{self.prefix}lock:customer:{part(customer_id)}"

    def round_lock(self, what: str) -> str:
        return f"{self.prefix}lock:{what}"

    def queued(self, customer_id: str, what: str = "customer") -> str:
        return f"{self.prefix}queued:{what}:{part(customer_id)}"

    def write_claim(self, token: str) -> str:
        """Held while one request sends the write of a form's one-time token."""
        return f"{self.prefix}write:{part(token)}"

    def webhook_seen(self, message_id: str) -> str:
        return f"{self.prefix}webhook:seen:{part(message_id)}"

    def health(self, what: str) -> str:
        """/healthz's own keys: a write probe per process, Stigg's cached reachability."""
        return f"{self.prefix}health:{part(what)}"
