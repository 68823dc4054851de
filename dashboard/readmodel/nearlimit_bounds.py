"""Near-limit: where in each ranking a capability's or an entity type's rows begin, so a
walk for a common value whose rows all sit low in an order (agent runs by usage: counts of
runs under millions of tokens) starts there instead of reading every row above them.

    near:bounds:{b|e}:{order}   hash  "{c|t}={value}|{bucket}" -> how many of the kind's
                                      members with that value score in that bucket of
                                      the order (value percent-encoded, as in members)

A bucket is a slice of the score on a log scale, eight to a doubling (x = the row's
usage, utilization or urgency; bucket 0 holds x <= 0, bucket b >= 1 holds
2^((b-1)/8) - 1 <= x < 2^(b/8) - 1), so a few hundred fields cover any usage. The highest
non-empty bucket of a value bounds its best row from above: no row of it scores higher
than that bucket's top, and the walk may begin at the first member at or below it (one
bucket of slack for rounding). Counts are exact, so the bound follows rows that shrink or
go: every write takes its old members out of their buckets before it rewrites the
rankings and puts its new members in after, by reading their scores in Redis (the same
arithmetic both ways), inside the writer's MULTI. What is assumed: a value's rows are
what the bound is about — plan and owner (the customer's facets) have none, and the
bound only moves a walk's start, never what it matches.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

from .keys import BUDGET_RANKINGS, Keys

# Add (ARGV[1] = 1) or take out (-1) the members' buckets, per order, from the scores the
# rankings hold now. KEYS: the kind's rankings by utilization, usage, urgency, then its
# bounds for the same orders. ARGV: sign, the members.
COUNT_SCRIPT = r"""
local sign = tonumber(ARGV[1])
local find, sub, floor, log = string.find, string.sub, math.floor, math.log
-- each member's "c=…" and "t=…" (false for an entitlement, which has no type)
local caps, types = {}, {}
for i = 2, #ARGV do
  local m = ARGV[i]
  local a = find(m, '|c=', 1, true)
  caps[i] = sub(m, a + 1, find(m, '|', a + 1, true) - 1)
  local t = find(m, '|t=', 1, true)
  types[i] = t and sub(m, t + 1, find(m, '|', t + 1, true) - 1)
end
for o = 1, 3 do
  local delta = {}
  for first = 2, #ARGV, 1000 do
    local last = math.min(first + 999, #ARGV)
    local scores = redis.call('zmscore', KEYS[o], unpack(ARGV, first, last))
    for j = 1, last - first + 1 do
      if scores[j] then
        local x = -tonumber(scores[j])
        local b = 0
        if x > 0 then b = floor(log(1 + x) / log(2) * 8) + 1 end
        local i = first - 1 + j
        local f = caps[i] .. '|' .. b
        delta[f] = (delta[f] or 0) + sign
        if types[i] then
          f = types[i] .. '|' .. b
          delta[f] = (delta[f] or 0) + sign
        end
      end
    end
  end
  for f, d in pairs(delta) do
    if redis.call('hincrby', KEYS[3 + o], f, d) <= 0 then redis.call('hdel', KEYS[3 + o], f) end
  end
end
return 1
"""


def queue_bounds(pipe: Any, keys: Keys, kind: str, members: Iterable[str], sign: int) -> None:
    """Queue (inside MULTI) taking ``members`` of a kind ("b" / "e") out of their buckets
    (sign -1: before the rankings are rewritten) or putting them in (+1: after)."""
    members = sorted(members)
    if not members:
        return
    rank = keys.rank_budgets if kind == "b" else keys.rank_entitlements
    script_keys = [*(rank(order) for order in BUDGET_RANKINGS),
                   *(keys.near_bounds(kind, order) for order in BUDGET_RANKINGS)]
    pipe.eval(COUNT_SCRIPT, len(script_keys), *script_keys, sign, *members)


def bucket(x: float) -> int:
    """The bucket of a score (as COUNT_SCRIPT computes it; for tests)."""
    return 0 if x <= 0 else math.floor(math.log(1 + x) / math.log(2) * 8) + 1
