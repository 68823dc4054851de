"""Near-limit: where in the usage rankings a capability's or an entity type's rows begin,
so a walk for a common value whose rows all sit low in that order (agent runs by usage:
counts of runs under millions of tokens) starts there instead of reading every row above
them.

    near:bounds:{b|e}:usage   hash  "{c|t}={value}|{bucket}" -> how many of the kind's
                                    members with that value score in that bucket of usage
                                    (value percent-encoded, as in members)

Only usage (BOUNDED_ORDERS): there each capability counts in its own unit, so one can sit
wholly below another. Utilization and urgency put every capability on the same scale (0 to
a few), so a common value's rows are met early in those orders, and bounds there would
triple what every write pays for them (measured: bench/README.md).

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

from .keys import Keys

BOUNDED_ORDERS = ("usage",)

# Move the members a write changes between buckets: run inside the writer's MULTI before it
# rewrites the usage ranking, so the ranking still holds each member's old score; a member
# whose bucket stays (most: usage moves within a bucket) costs one lookup. The new scores
# are the strings the ZADD will send (repr of the float, read back as the same double).
# KEYS: the kind's usage ranking, its bounds. ARGV: member, new score ("" when the write
# takes it out of the ranking), member, new score, ...
COUNT_SCRIPT = r"""
local find, sub, floor, log = string.find, string.sub, math.floor, math.log
local function bucket(score)
  local x = -tonumber(score)
  if x > 0 then return floor(log(1 + x) / log(2) * 8) + 1 end
  return 0
end
local delta = {}
local function count(m, b, d)
  local a = find(m, '|c=', 1, true)
  local f = sub(m, a + 1, find(m, '|', a + 1, true) - 1) .. '|' .. b
  delta[f] = (delta[f] or 0) + d
  local t = find(m, '|t=', 1, true)  -- an entitlement has no type
  if t then
    f = sub(m, t + 1, find(m, '|', t + 1, true) - 1) .. '|' .. b
    delta[f] = (delta[f] or 0) + d
  end
end
for first = 1, #ARGV, 2000 do
  local last = math.min(first + 1999, #ARGV)
  local ms = {}
  for i = first, last, 2 do ms[#ms + 1] = ARGV[i] end
  local olds = redis.call('zmscore', KEYS[1], unpack(ms))
  for j = 1, #ms do
    local new = ARGV[first + 2 * j - 1]
    local was, now = false, false
    if olds[j] then was = bucket(olds[j]) end
    if new ~= '' then now = bucket(new) end
    if was ~= now then
      if was then count(ms[j], was, -1) end
      if now then count(ms[j], now, 1) end
    end
  end
end
for f, d in pairs(delta) do
  if d ~= 0 and redis.call('hincrby', KEYS[2], f, d) <= 0 then redis.call('hdel', KEYS[2], f) end
end
return 1
"""


def queue_bounds(pipe: Any, keys: Keys, kind: str, usage: dict[str, float], removed: Iterable[str] = ()) -> None:
    """Queue (inside MULTI, before the kind's usage ranking is rewritten) the bucket moves
    of a write: ``usage`` the members it (re)writes there with their scores (negated, as
    ZADD gets them), ``removed`` those it takes out."""
    args: list[str] = []
    for member, score in sorted(usage.items()):
        args += [member, repr(float(score))]
    for member in sorted(removed):
        args += [member, ""]
    if args:
        rank = keys.rank_budgets("usage") if kind == "b" else keys.rank_entitlements("usage")
        pipe.eval(COUNT_SCRIPT, 2, rank, keys.near_bounds(kind, "usage"), *args)


def bucket(x: float) -> int:
    """The bucket of a score (as COUNT_SCRIPT computes it; for tests)."""
    return 0 if x <= 0 else math.floor(math.log(1 + x) / math.log(2) * 8) + 1
