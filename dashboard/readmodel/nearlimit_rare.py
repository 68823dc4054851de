"""Near-limit: the rows of a rare capability or entity type, listed — so a filter on one is
answered from its own few rows, not by walking the fleet rankings until its rows turn up
(a rare value in usage order sits anywhere, often at the very end: nearlimit.py).

    near:rows:{capability|entity_type}            zset  value -> ranking members having it
                                                        (budgets and entitlements; every
                                                        member, with a utilization or not)
    near:rare:{capability|entity_type}:{value}    set   while the value is rare: those
                                                        members, "b" / "e" + member

What is assumed, and why this shape:

* Only the row's own facets. Plan and owner are the customer's: a few customers are read
  one by one (nearlimit.py), and listing their rows would move thousands of members on a
  plan change. Capabilities (metered features and currencies) and entity types are few —
  tens, not thousands — so their counts are a handful of fields, and at most
  COMMON_ROWS members per value are ever listed: the cost is bounded by the values, not by
  the fleet. (Every value's rows, listed for every facet, measured ~50 MB.)
* Rare is counted in members, and the count is exact: every write of a customer's rankings
  knows which members it adds and removes (read under WATCH), and the script below runs
  inside the same MULTI, after that kind's ranking writes, so count and list change in the
  same atomic step as the rankings.
* Hysteresis: a value is listed while it has at most RARE_ROWS members, and stays listed up
  to COMMON_ROWS; past that its list is dropped. A value new to the fleet is listed from its
  first member (nothing to read); a value that had members and falls back to RARE_ROWS or
  fewer is listed by one scan of both rankings inside the write that made it rare (~100,000
  members, tens of milliseconds of Redis, once: the gap between the two limits keeps a
  value near one of them from being listed and dropped write after write).
* A value is listed exactly when its set exists: a listed value has members (its count is
  above 0), and a value at 0 loses its count, so it is new again when it comes back.

A query naming a listed value is answered from its list by one read-only script
(nearlimit_scripts.RARE_SCRIPT: filter, score, keep the page), whatever the threshold and
the order; a value that is not listed is walked (nearlimit.py). Measured in
bench/bench_near_limit.py.
"""
from __future__ import annotations

from typing import Any, Iterable
from urllib.parse import unquote

from .keys import RARE_FACETS, Keys, part

RARE_ROWS = 2000  # a value with members falling to this many is listed
COMMON_ROWS = 4000  # a listed value past this many is dropped (memory: ~130 bytes a member)
_SADD_CHUNK = 1000

# Keep counts and lists of the values a write touched. Runs inside the writer's MULTI,
# after the ZADD/ZREM of its kind: the rankings already hold what this write adds.
# KEYS: every budget (rank:budgets:urgency), every entitlement (rank:entitlements), then per
#       value its count key and its list key.
# ARGV: rare, common, then per value: the value, its token in a member ("|c=…|" or "|t=…|"),
#       budgets only (1/0), how many removed, how many added, the removed, the added.
MAINTAIN_SCRIPT = r"""
local rare, common = tonumber(ARGV[1]), tonumber(ARGV[2])
local find = string.find

local function each_chunk(list, first, n, command, key)
  local i = first
  while i < first + n do
    local last = math.min(i + 999, first + n - 1)
    redis.call(command, key, unpack(list, i, last))
    i = last + 1
  end
end

-- List every member of a value (one scan of both rankings; this write's own are in them).
local function build(set, token, budgets_only)
  local sources = {{KEYS[1], 'b'}}
  if not budgets_only then sources[2] = {KEYS[2], 'e'} end
  for _, src in ipairs(sources) do
    local n = redis.call('zcard', src[1])
    for start = 0, n - 1, 10000 do
      local ms, found = redis.call('zrange', src[1], start, start + 9999), {}
      for i = 1, #ms do
        if find(ms[i], token, 1, true) then found[#found + 1] = src[2] .. ms[i] end
      end
      each_chunk(found, 1, #found, 'sadd', set)
    end
  end
end

local a, g = 3, 0
while a <= #ARGV do
  local counts, set = KEYS[3 + 2 * g], KEYS[4 + 2 * g]
  local value, token, budgets_only = ARGV[a], ARGV[a + 1], ARGV[a + 2] == '1'
  local nr, na = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local first_removed, first_added = a + 5, a + 5 + nr
  a, g = first_added + na, g + 1
  local old = tonumber(redis.call('zscore', counts, value) or '0')
  local new = old - nr + na
  local listed = redis.call('exists', set) == 1
  if new <= 0 then
    redis.call('zrem', counts, value)
    redis.call('del', set)
  else
    redis.call('zadd', counts, new, value)
    if listed and new > common then
      redis.call('del', set)
    elseif listed then
      each_chunk(ARGV, first_removed, nr, 'srem', set)
      each_chunk(ARGV, first_added, na, 'sadd', set)
    elseif old == 0 and new <= common then  -- new to the fleet: its members are these
      each_chunk(ARGV, first_added, na, 'sadd', set)
    elseif old > 0 and new <= rare then
      build(set, token, budgets_only)
    end
  end
end
return g
"""


def member_values(kind: str, member: str) -> dict[str, str]:
    """The rare facets' values of a ranking member ("b": a budget's, "e": an entitlement's)."""
    fields = member.split("|")
    if kind == "b":  # customer|entity|scope|c=…|t=…|
        return {"capability": unquote(fields[3][2:]), "entity_type": unquote(fields[4][2:])}
    return {"capability": unquote(fields[1][2:])}  # customer|c=…|


def token(facet: str, value: str) -> str:
    """How a value shows in a member: "|c=…|" or "|t=…|" (an encoded part holds neither "|"
    nor "=", so the token matches that facet only)."""
    return f"|{'c' if facet == 'capability' else 't'}={part(value)}|"


def rare_moves(kind: str, removed: Iterable[str], added: Iterable[str]
               ) -> dict[tuple[str, str], tuple[list[str], list[str]]]:
    """Per (facet, value): the members (prefixed with ``kind``) a write removes and adds."""
    moves: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for side, members in ((0, removed), (1, added)):
        for member in sorted(members):
            for facet, value in member_values(kind, member).items():
                moves.setdefault((facet, value), ([], []))[side].append(kind + member)
    return moves


def queue_rare(pipe: Any, keys: Keys, kind: str, removed: Iterable[str], added: Iterable[str]) -> None:
    """Queue (inside MULTI, after the ranking writes of ``kind``) the count and list changes
    of the members a write removes from and adds to the rankings."""
    moves = rare_moves(kind, removed, added)
    if not moves:
        return
    script_keys = [keys.rank_budgets("urgency"), keys.rank_entitlements()]
    args: list[Any] = [RARE_ROWS, COMMON_ROWS]
    for (facet, value), (gone, new) in sorted(moves.items()):
        script_keys += [keys.near_rows(facet), keys.near_rare(facet, value)]
        args += [value, token(facet, value), "1" if facet == "entity_type" else "0", len(gone), len(new), *gone, *new]
    pipe.eval(MAINTAIN_SCRIPT, len(script_keys), *script_keys, *args)


def rare_list(r: Any, keys: Keys, chosen: list[tuple[str, str]]) -> tuple[str, int] | None:
    """The list key of the rarest listed value among the chosen filters and its size; key
    "" when a chosen value has no member at all (nothing can match); None when none is
    listed."""
    rare = [(facet, value) for facet, value in chosen if facet in RARE_FACETS]
    if not rare:
        return None
    pipe = r.pipeline(transaction=True)
    for facet, value in rare:
        pipe.zscore(keys.near_rows(facet), value)
        pipe.scard(keys.near_rare(facet, value))
    replies = pipe.execute()
    counts, sizes = replies[::2], replies[1::2]
    if any(c is None for c in counts):
        return "", 0
    listed = [(int(size), facet, value) for (facet, value), size in zip(rare, sizes) if size]
    if not listed:
        return None
    size, facet, value = min(listed)
    return keys.near_rare(facet, value), size
