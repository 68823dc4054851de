"""Customer search: a near-real-time index each web process keeps of the customers list's
search text, kept current from a change log in Redis.

Searching the list is a case-insensitive substring of a customer's id, name or email.
Walking a sort order in a Lua script (every member holds its search text) costs ~1.2 µs a
member: ~3 ms at 10,000 customers, ~120 ms at 100,000 (bench_read_model.py), and a Lua
script cannot read a big string faster (GET of 11 MB into Lua: ~15 ms). So each process
keeps the text itself, in name order, in blocks of joined lines, and finds a needle with
``str.find`` over them (C speed: the page of a rare needle at 100,000 customers, 6–8 ms):

    search:seq      string  bumped by every change of a customer's list entry
    search:log      zset    customer id -> the seq of its last change (one member
                            per customer ever listed: removals stay in)
    search:epoch    string  random, set with the first change: a cleared or replaced
                            read model starts every process afresh

A change of a customer's list entry (id, name, email, plan, status, owner: not its
utilization, which search reads from the sort order at query time) is logged in the
customer's own transaction (``queue_logged_change``). Before a search, a process reads the
seq (one round trip) and, when it moved, the entries logged since its own, so its answer
is as current as the list's. A process starts, or falls too far behind (more than
REBUILD_AFTER changes), by reading every entry (``customers:indexed``; ~2.4 s at 100,000 on
a busy box, once per process).

A needle matching more than COUNT_CAP customers gives its total as "more than COUNT_CAP"
(counting every match costs ~0.4 µs each); its pages stay exact: in name order the index's
own order, by utilization a walk of the filtered order that stops when the page is full.
"""
from __future__ import annotations

import bisect
import json
import threading
import uuid
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Callable

from .keys import Keys
from .values import as_str

COUNT_CAP = 10_000  # matches counted exactly; past it the total is a lower bound
SORT_BY_SCORE = 2_000  # up to this many matches, utilization order is their scores sorted; past it, a walk
REBUILD_AFTER = 20_000  # changes since a process's last read past which it reads everything again
BLOCK = 2_000  # lines per block of the index (a change rejoins one block's text)
FILTERED_CACHE = 32  # filtered indexes (plan / status / owner) kept per process

# KEYS: seq, log, epoch. ARGV: customer id.
_LOG_CHANGE = """
local seq = redis.call('incr', KEYS[1])
redis.call('zadd', KEYS[2], seq, ARGV[1])
redis.call('set', KEYS[3], ARGV[2], 'NX')
return seq
"""


def queue_logged_change(pipe: Any, keys: Keys, customer_id: str) -> None:
    """Queue (inside the customer's MULTI) the log entry of a change of its list entry."""
    pipe.eval(_LOG_CHANGE, 3, keys.search_seq(), keys.search_log(), keys.search_epoch(), customer_id,
              uuid.uuid4().hex)


def line_of(entry: dict[str, Any]) -> str:
    """What a needle is found in: the utilization member, "{id}\\0{search text}" (the raw id
    stands for the cleaned one where they are equal: customers._index_entry), its parts
    separated by \\x1f as the text's are (a needle holds neither) and its line breaks made
    spaces (they separate the index's lines; a needle's are too)."""
    return entry["members"]["utilization"].replace("\0", "\x1f").replace("\n", " ")


@dataclass(slots=True)
class _Entry:
    cid: str
    name_member: str
    util_member: str
    plan: str
    status: str
    owner: str
    line: str


class _Block:
    """Consecutive entries in name order, with their name members (to place a change) and,
    once searched, their lines joined by "\\n" (rejoined after a change)."""

    def __init__(self, entries: list[_Entry]) -> None:
        self.entries = entries
        self.keys = [e.name_member for e in entries]
        self.text: str | None = None
        self.starts: list[int] = []

    def joined(self) -> tuple[str, list[int]]:
        if self.text is None:
            lines = [e.line for e in self.entries]
            self.starts = [0, *accumulate(len(line) + 1 for line in lines[:-1])]
            self.text = "\n".join(lines)
        return self.text, self.starts


class _Sorted:
    """Entries in name order (the sort order's members compared as Redis does: Python's
    str order is UTF-8's byte order), in blocks of about ``block`` lines."""

    def __init__(self, entries: list[_Entry], block: int = BLOCK) -> None:
        entries = sorted(entries, key=lambda e: e.name_member)
        self.block = block
        self.blocks = [_Block(entries[i:i + block]) for i in range(0, len(entries), block)] or [_Block([])]

    def _block_of(self, member: str) -> int:
        firsts = [b.keys[0] if b.keys else "" for b in self.blocks]
        return max(0, bisect.bisect_right(firsts, member) - 1)

    def remove(self, entry: _Entry) -> None:
        block = self.blocks[self._block_of(entry.name_member)]
        i = bisect.bisect_left(block.keys, entry.name_member)
        if i < len(block.keys) and block.keys[i] == entry.name_member:
            del block.entries[i], block.keys[i]
            block.text = None
            if not block.entries and len(self.blocks) > 1:
                self.blocks.remove(block)

    def add(self, entry: _Entry) -> None:
        at = self._block_of(entry.name_member)
        block = self.blocks[at]
        i = bisect.bisect_left(block.keys, entry.name_member)
        block.entries.insert(i, entry)
        block.keys.insert(i, entry.name_member)
        block.text = None
        if len(block.entries) > 2 * self.block:
            self.blocks[at:at + 1] = [_Block(block.entries[:self.block]), _Block(block.entries[self.block:])]

    def matches(self, needle: str, wanted: Callable[[int], bool],
                cap: Callable[[int], bool]) -> tuple[int, list[_Entry]]:
        """How many lines hold ``needle`` (counting stops where ``cap(count)``), and, in name
        order, the entries of those whose number (1, 2, ...) is ``wanted``. A match costs
        two ``str.find`` calls; only a wanted one is placed in its block (bisect)."""
        count, found = 0, []
        for block in self.blocks:
            if not block.entries:
                continue
            text, starts = block.joined()
            at = text.find(needle)
            while at >= 0:
                count += 1
                if wanted(count):
                    found.append(block.entries[bisect.bisect_right(starts, at) - 1])
                if cap(count):
                    return count, found
                end = text.find("\n", at)
                if end < 0:
                    break
                at = text.find(needle, end + 1)  # from the next line: each line counted once
        return count, found


@dataclass(frozen=True)
class Found:
    total: int  # matches; when ``more``, those counted (at least the cap)
    more: bool  # there may be more matches than ``total``
    name_page: list[str]  # name order: the ids of the page asked for
    ids: list[tuple[str, str]] | None  # utilization order: (id, util member) of every match, when few


class SearchIndex:
    """One process's index of one read model (see the module docstring). Thread-safe."""

    def __init__(self, count_cap: int = COUNT_CAP, sort_by_score: int = SORT_BY_SCORE,
                 rebuild_after: int = REBUILD_AFTER, block: int = BLOCK) -> None:
        self.count_cap, self.sort_by_score = count_cap, sort_by_score
        self.rebuild_after, self.block = rebuild_after, block
        self.lock = threading.Lock()
        self.built = False
        self.epoch: str | None = None
        self.seq = -1
        self.entries: dict[str, _Entry] = {}
        self.sorted: dict[tuple[str, str, str], _Sorted] = {}  # filter -> its entries in order

    def refresh(self, r: Any, keys: Keys) -> None:
        pipe = r.pipeline(transaction=False)
        pipe.get(keys.search_epoch())
        pipe.get(keys.search_seq())
        epoch, seq = pipe.execute()
        epoch, seq = as_str(epoch), int(seq or 0)
        if self.built and epoch == self.epoch and seq == self.seq:
            return
        if not self.built or epoch != self.epoch or seq < self.seq or seq - self.seq > self.rebuild_after:
            raw = r.hgetall(keys.indexed())  # read after the seq: nothing older than it is missed
            self.entries = {}
            for cid, value in raw.items():
                entry = _entry(as_str(cid), value)
                if entry is not None:
                    self.entries[entry.cid] = entry
            self.sorted = {}
        else:
            changed = [as_str(c) for c in r.zrangebyscore(keys.search_log(), f"({self.seq}", "+inf")]
            values = r.hmget(keys.indexed(), changed) if changed else []
            for cid, value in zip(changed, values):
                self._apply(cid, _entry(cid, value) if value else None)
        self.built, self.epoch, self.seq = True, epoch, seq

    def _apply(self, cid: str, entry: _Entry | None) -> None:
        old = self.entries.pop(cid, None)
        for scope, index in self.sorted.items():
            if old is not None and _in_scope(old, scope):
                index.remove(old)
            if entry is not None and _in_scope(entry, scope):
                index.add(entry)
        if entry is not None:
            self.entries[cid] = entry

    def _index(self, scope: tuple[str, str, str]) -> _Sorted:
        index = self.sorted.get(scope)
        if index is None:
            if len(self.sorted) >= FILTERED_CACHE:
                self.sorted.pop(next(k for k in self.sorted if k != ("", "", "")))
            entries = [e for e in self.entries.values() if _in_scope(e, scope)]
            index = self.sorted[scope] = _Sorted(entries, self.block)
        return index

    def find(self, needle: str, scope: tuple[str, str, str], by_name: bool, offset: int, limit: int) -> Found:
        """Matches of ``needle`` among the customers of ``scope`` (plan, status, owner; ""
        any): their total (capped), and by name the page's ids, or by utilization every
        match's id when there are at most ``sort_by_score`` (None: walk the order instead)."""
        # Counting stops at the first match past the cap (and past the page): it proves "more".
        index = self._index(scope)
        if by_name:
            counted, page = index.matches(needle, lambda n: offset < n <= offset + limit,
                                          lambda n: n > self.count_cap and n > offset + limit)
            more = counted > max(self.count_cap, offset + limit)
            return Found(counted - 1 if more else counted, more, [e.cid for e in page], None)
        counted, every = index.matches(needle, lambda n: n <= self.sort_by_score, lambda n: n > self.count_cap)
        more = counted > self.count_cap
        if counted > self.sort_by_score:
            return Found(counted - 1 if more else counted, more, [], None)
        return Found(counted, False, [], [(e.cid, e.util_member) for e in every])


def _in_scope(entry: _Entry, scope: tuple[str, str, str]) -> bool:
    plan, status, owner = scope
    return (not plan or entry.plan == plan) and (not status or entry.status == status) and (
        not owner or entry.owner == owner)


def _entry(cid: str, value: Any) -> _Entry | None:
    data = json.loads(value)
    members = data.get("members") or {}
    if "name" not in members or "utilization" not in members:
        return None
    return _Entry(cid, members["name"], members["utilization"], data.get("plan", ""), data.get("status", ""),
                  data.get("owner", ""), line_of(data))


_indexes: dict[tuple[Any, ...], SearchIndex] = {}
_indexes_lock = threading.Lock()


def index_for(r: Any, keys: Keys) -> SearchIndex:
    """This process's index of the read model at ``r`` under ``keys.prefix``."""
    kwargs = r.connection_pool.connection_kwargs
    where = (kwargs.get("host"), kwargs.get("port"), kwargs.get("path"), kwargs.get("db"), keys.prefix)
    with _indexes_lock:
        return _indexes.setdefault(where, SearchIndex())
