"""The read-only Lua script behind the near-limit reads of many customers (nearlimit.py says
when it runs). It tests a member's own facets by plain substring ("|c=…|", "|t=…|": an
encoded part holds neither "|" nor "=", so these match only the capability and the entity
type)."""

# Whether a member's customer has the wanted plan and owner (its near:facets field, read
# once per customer): shared by the walk and the rare-list scripts. The customer id starts
# at character CID_AT of the member; the facets hash is KEYS[FACETS_KEY].
_CUSTOMER_OK = r"""local seen = {}
local function customer_ok(m)
  local cid = sub(m, CID_AT, find(m, '|', 1, true) - 1)
  local ok = seen[cid]
  if ok == nil then
    ok = false
    local f = redis.call('hget', KEYS[FACETS_KEY], cid)
    if f then
      local a = find(f, '|', 1, true)
      local b = find(f, '|', a + 1, true)
      ok = (not want_plan or sub(f, 1, a - 1) == plan) and (not want_owner or sub(f, a + 1, b - 1) == owner)
    end
    seen[cid] = ok
  end
  return ok
end
"""


def _customer_ok(cid_at: int, facets_key: int) -> str:
    return _CUSTOMER_OK.replace("CID_AT", str(cid_at)).replace("FACETS_KEY", str(facets_key))


# Walk the budgets' and the entitlements' rankings of one order together, from the top,
# in chunks: each chunk is filtered first (substring tests; plan and owner looked up once per
# customer met, in near:facets; by usage or urgency, one ZMSCORE of the chunk's candidates
# for their utilization), then the matches of both are merged, the lower (negated) score
# first, budgets first on a tie (no string comparison in Lua: its "<" follows the server's
# locale, while Redis orders members bytewise). Stops when ``limit`` rows past ``skip``
# matches and one more are found, at the end, or after ``scan`` members (the caller goes on
# from the cursor: per ranking, the last member decided on, taken or not). By utilization
# only the range at or above the threshold is read.
# A chosen capability or entity type starts each ranking where its rows can begin
# (nearlimit_bounds.py), not at the top.
# KEYS: budgets in the order, entitlements in the order, budgets by utilization,
#       entitlements by utilization, near:facets, the budgets' and the entitlements' bounds
#       in the order.
# ARGV: -threshold, by utilization (1/0), capability token, entity-type token, plan, owner,
#       plan wanted (1/0), owner wanted (1/0), skip, limit, scan, then per ranking the score
#       and member of the last one decided on before ("" to start at the top), then whether
#       to read the budgets and the entitlements at all (1/0), then the bounds' fields of
#       the capability and the entity type ("c=…", "t=…"; "" when not chosen).
# Returns {members prefixed b/e, cursor (4 values), one more found, matches, done}.
WALK_SCRIPT = r"""
local maxscore, by_util = ARGV[1], ARGV[2] == '1'
local threshold = tonumber(maxscore)
local cap, etype, plan, owner = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local want_plan, want_owner = ARGV[7] == '1', ARGV[8] == '1'
local skip, limit, scan = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local find, sub = string.find, string.sub
local scanned = 0
local sb, se

""" + _customer_ok(1, 5) + r"""
-- The score a ranking's rows of the chosen capability and entity type cannot beat, from
-- the highest bucket holding any (nearlimit_bounds.py; one bucket of slack); nil when no
-- value is chosen, false when a chosen value has no row in it.
local function bound(key, bounds, budgets)
  local fields = {}
  if ARGV[18] ~= '' then fields[#fields + 1] = ARGV[18] end
  if budgets and ARGV[19] ~= '' then fields[#fields + 1] = ARGV[19] end
  if #fields == 0 then return nil end
  local top = redis.call('zrange', key, 0, 0, 'withscores')
  if #top == 0 then return false end
  local x = -tonumber(top[2])
  local highest = 0
  if x > 0 then highest = math.floor(math.log(1 + x) / math.log(2) * 8) + 1 end
  local start = -math.huge
  for _, f in ipairs(fields) do
    local b = highest
    while b >= 0 and redis.call('hexists', bounds, f .. '|' .. b) == 0 do b = b - 1 end
    if b < 0 then return false end
    local most = 0
    if b > 0 then most = 2 ^ ((b + 1) / 8) - 1 end
    if -most > start then start = -most end
  end
  return start
end

local function open(key, util, budgets, last_score, last, wanted, bounds)
  local n = 0
  if wanted == '1' then
    if by_util then n = redis.call('zcount', key, '-inf', maxscore) else n = redis.call('zcard', key) end
  end
  local pos = 0
  if last ~= '' and n > 0 then
    local s = redis.call('zscore', key, last)
    if s and tonumber(s) == tonumber(last_score) then pos = redis.call('zrank', key, last) + 1
    else pos = redis.call('zcount', key, '-inf', '(' .. last_score) end  -- it moved: from its old score
  end
  if n > 0 then
    local start = bound(key, bounds, budgets)
    if start == false then n = 0
    elseif start ~= nil then pos = math.max(pos, redis.call('zcount', key, '-inf', '(' .. start)) end
  end
  -- q: the queued matches, 4 values each: member, score, and the member and score read just
  -- before it (where to resume if it is not taken); tail: the last member read.
  return {key = key, util = util, budgets = budgets, kind = budgets and 'b' or 'e', n = n, pos = pos,
          q = {}, qi = 1, size = 64, tail = last, tail_score = last_score}
end

local function cursor(s)
  if s.qi > #s.q then return s.tail_score, s.tail end
  local pm, px = s.q[s.qi + 2], s.q[s.qi + 3]
  if px == false then px = redis.call('zscore', s.key, pm) end
  return px, pm
end

local function exhausted(s) return s.pos >= s.n end
-- Every member of a ranking not read yet scores at least its frontier.
local function frontier(s)
  if exhausted(s) then return math.huge end
  if s.tail_score == '' then return -math.huge end
  return tonumber(s.tail_score)
end
local function head(s) if s.qi <= #s.q then return tonumber(s.q[s.qi + 1]) end return nil end

-- Read the next chunk of a ranking and queue its matches; false when the scan budget is spent.
-- Scores are read only for the chunk's candidates (most members of a selective filter are
-- never scored) and for its last member (the frontier). Chunks double, from 64 to 1,024: a
-- filter on plan or owner looks up each new customer of a chunk, and a chunk far past the
-- page's last match is that many lookups for nothing (an owner's 50 rows at 100,000
-- customers lay within the first 410 members; growing fourfold read 1,344).
local matched = 0
local function read(s)
  -- The budget stops a call only once it has made progress: a match taken, or every
  -- ranking's cursor moved past what it read (nothing queued).
  if scanned >= scan and (matched > 0 or (sb.qi > #sb.q and se.qi > #se.q)) then return false end
  local r = redis.call('zrange', s.key, s.pos, math.min(s.pos + s.size, s.n) - 1)
  if #r == 0 then s.n = s.pos return true end
  s.pos, scanned, s.size = s.pos + #r, scanned + #r, math.min(s.size * 2, 1024)
  local cand, ms = {}, {}
  for i = 1, #r do
    local m = r[i]
    if (cap == '' or find(m, cap, 1, true)) and (etype == '' or (s.budgets and find(m, etype, 1, true)))
       and (not (want_plan or want_owner) or customer_ok(m)) then
      cand[#cand + 1] = i
      ms[#ms + 1] = m
    end
  end
  local q = {}
  for k = s.qi, #s.q do q[#q + 1] = s.q[k] end
  if #ms > 0 then
    local xs = redis.call('zmscore', s.key, unpack(ms))
    local us = xs
    if not by_util then us = redis.call('zmscore', s.util, unpack(ms)) end
    for j, i in ipairs(cand) do
      if us[j] and tonumber(us[j]) <= threshold then
        -- the member read just before it, where to resume if it is not taken (score: when needed)
        local pm, px = s.tail, s.tail_score
        if i > 1 then pm, px = r[i - 1], false end
        q[#q + 1] = ms[j]; q[#q + 1] = xs[j]; q[#q + 1] = pm; q[#q + 1] = px
      end
    end
  end
  s.q, s.qi, s.tail = q, 1, r[#r]
  s.tail_score = redis.call('zscore', s.key, s.tail)
  return true
end

sb = open(KEYS[1], KEYS[3], true, ARGV[12], ARGV[13], ARGV[16], KEYS[6])
se = open(KEYS[2], KEYS[4], false, ARGV[14], ARGV[15], ARGV[17], KEYS[7])
local page, more, done = {}, 0, 0
-- Merge: a ranking's head may be taken once the other cannot hold anything before it (its
-- head, or its frontier when nothing is queued); budgets go first on a tie. A ranking with
-- no match is read only as far as the other's head, not to its end.
while true do
  local hb, he = head(sb), head(se)
  local s
  local need_b = hb == nil and not exhausted(sb) and (he == nil or frontier(sb) <= he)
  local need_e = he == nil and not exhausted(se) and (hb == nil or frontier(se) < hb)
  if need_b and need_e then
    s = se
    if frontier(sb) <= frontier(se) then s = sb end  -- the one read less far
  elseif need_b then s = sb
  elseif need_e then s = se end
  if s ~= nil then
    if not read(s) then break end  -- scan budget spent: the caller goes on from the cursor
  elseif hb == nil and he == nil then
    done = 1 break
  else
    s = se
    if hb ~= nil and (he == nil or hb <= he) then s = sb end
    if matched >= skip and #page >= limit then more, done = 1, 1 break end
    matched = matched + 1
    if matched > skip then page[#page + 1] = s.kind .. s.q[s.qi] end
    s.qi = s.qi + 4
  end
end
local bx, bm = cursor(sb)
local ex, em = cursor(se)
return {page, bx, bm, ex, em, more, matched, done}
"""

# Read a rare value's listed members (nearlimit_rare.py) and answer one page from them:
# filter as the walk does (tokens in the member, plan and owner once per customer), score
# each by utilization and by the order, keep those at or above the threshold, sort them by
# score, budgets first on a tie, then bytewise by member (as Redis orders members; Lua's
# "<" on strings follows the server's locale, so bytes are compared one by one), and
# return the total and the page. A few thousand members at most: nothing but the page
# leaves Redis.
# KEYS: the list, budgets in the order, entitlements in the order, budgets by utilization,
#       entitlements by utilization, near:facets.
# ARGV: -threshold, by utilization (1/0), capability token, entity-type token, plan, owner,
#       plan wanted (1/0), owner wanted (1/0), skip, limit (-1: every row).
# Returns {listed (0: the list is gone, walk instead), total, members prefixed b/e}.
RARE_SCRIPT = r"""
local listed = redis.call('smembers', KEYS[1])
if #listed == 0 then return {0, 0, {}} end
local threshold, by_util = tonumber(ARGV[1]), ARGV[2] == '1'
local cap, etype, plan, owner = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local want_plan, want_owner = ARGV[7] == '1', ARGV[8] == '1'
local skip, limit = tonumber(ARGV[9]), tonumber(ARGV[10])
local find, sub, byte = string.find, string.sub, string.byte

""" + _customer_ok(2, 6) + r"""
local kinds = {b = {}, e = {}}
for i = 1, #listed do
  local m = listed[i]
  local kind = sub(m, 1, 1)
  if (kind == 'b' or etype == '') and (cap == '' or find(m, cap, 1, true))
     and (etype == '' or find(m, etype, 1, true)) and (not (want_plan or want_owner) or customer_ok(m)) then
    local list = kinds[kind]
    list[#list + 1] = sub(m, 2)
  end
end

-- Rows in the walk's order: by score, budgets first on a tie, then bytewise by member.
local function before(s1, k1, m1, row)
  if s1 ~= row[1] then return s1 < row[1] end
  if k1 ~= row[2] then return k1 == 'b' end
  local m2 = row[3]
  for i = 1, math.min(#m1, #m2) do
    local p, q = byte(m1, i), byte(m2, i)
    if p ~= q then return p < q end
  end
  return #m1 < #m2
end

-- Keep only the first skip + limit rows, in order (most rows fail one comparison with the
-- last kept); every row when limit is -1 (then sorted once at the end).
local keep = skip + limit
local total, top = 0, {}
local function take(score, kind, m)
  total = total + 1
  if limit < 0 then top[#top + 1] = {score, kind, m} return end
  local n = #top
  if keep == 0 or (n >= keep and not before(score, kind, m, top[n])) then return end
  local lo, hi = 1, n + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if before(score, kind, m, top[mid]) then hi = mid else lo = mid + 1 end
  end
  table.insert(top, lo, {score, kind, m})
  if n + 1 > keep then top[n + 1] = nil end
end

-- Every entitlement member has a utilization (>= 0): at a threshold of 0 only its score in
-- the order is read.
local every_entitlement = threshold >= 0
for _, ranking in ipairs({{'b', KEYS[2], KEYS[4]}, {'e', KEYS[3], KEYS[5]}}) do
  local kind, order_key, util_key = ranking[1], ranking[2], ranking[3]
  local ms = kinds[kind]
  local skip_util = kind == 'e' and every_entitlement and not by_util
  for first = 1, #ms, 1000 do
    local last = math.min(first + 999, #ms)
    local us, xs
    if not skip_util then us = redis.call('zmscore', util_key, unpack(ms, first, last)) end
    if by_util then xs = us else xs = redis.call('zmscore', order_key, unpack(ms, first, last)) end
    for j = 1, last - first + 1 do
      if (skip_util and xs[j]) or (us and us[j] and tonumber(us[j]) <= threshold) then
        take(xs[j] and tonumber(xs[j]) or math.huge, kind, ms[first + j - 1])
      end
    end
  end
end
if limit < 0 then table.sort(top, function(x, y) return before(x[1], x[2], x[3], y) end) end

local page = {}
for i = skip + 1, #top do page[#page + 1] = top[i][2] .. top[i][3] end
return {1, total, page}
"""
