"""The fault scenarios of bench/bench_faults.py, one function each, run against a whole
stack (tests/full_stack.py) with a filled read model: each injects its fault, watches what
people and Stigg's webhooks see meanwhile, measures the recovery and returns an Outcome —
its figures and the expectations it found broken (none: it passed). tests/test_faults.py
runs the short ones on a small fleet."""
from __future__ import annotations

import base64
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import server_times
from bench.fault_changes import deliver_like_stigg, event, grant, stale_count, wait_all_fresh, wait_for_grants
from bench.fault_load import (
    PAGE_KINDS, Browsing, ConsistencyWatch, QueueWatch, Sample, World, between, page_figures, sign_in_all,
)
from tests.full_stack import FullStack, wait_until

CUSTOMERS_PER_SWEEP_PAGE = 100  # dashboard/stigg/client.py PAGE_LIMIT: one refresh_customer_page task each


@dataclass
class Outcome:
    name: str
    figures: list[tuple[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    headline: str = ""
    first_traceback: str = ""

    def figure(self, what: str, value: Any) -> None:
        self.figures.append((what, value if isinstance(value, str) else f"{value}"))

    def expect(self, holds: bool, failure: str) -> None:
        if not holds:
            self.failures.append(failure)


@dataclass(frozen=True)
class Timing:
    """What the scenarios measure recovery against: the stack's sweep interval and how
    long a steady and a discovery sweep took on this fleet before any fault."""

    sweep_interval: float
    steady_sweep: float
    discovery_sweep: float


def ms(value: float) -> str:
    return f"{value:.0f} ms"


def pages_line(samples: list[Sample]) -> str:
    f = page_figures(samples)
    return (f"{f['requests']} requests, {f['errors']} errors, p50 {ms(f['p50'])}, p95 {ms(f['p95'])}, "
            f"max {ms(f['max'])}")


def logs_and_processes(out: Outcome, stack: FullStack, marks: dict[int, int]) -> None:
    """What the processes logged since ``marks``, and whether any of them exited: every
    process must ride out every fault (none is restarted but the worker scenario 5 kills),
    and none may log a traceback (web, workers, beat): a fault the product expects is said
    in a line, and a traceback is a bug. The first one is kept to say what failed."""
    found = stack.tracebacks_since(marks)
    total = sum(found.values())
    out.first_traceback = stack.first_traceback(marks)
    out.figure("tracebacks logged (web, workers, beat)",
               ", ".join(f"{k} {v}" for k, v in found.items() if v) if total else "none")
    out.figure("processes that exited", ", ".join(stack.exited()) or "none")
    out.expect(not stack.exited(), f"processes exited: {stack.exited()}")
    out.expect(total == 0, f"tracebacks in the logs: {found}")


# --- 1. Stigg down --------------------------------------------------------------------------


def stigg_outage(stack: FullStack, world: World, timing: Timing, seconds: float) -> Outcome:
    """Stigg answers 503 to everything for ``seconds``. Its changes made just before were
    not yet announced: their webhooks arrive during the outage (this bench sends them, as
    Stigg would, retrying what is not answered 2xx). Every page must render from the read
    model with its age; every event answered 2xx must be in the read model after recovery;
    and the sync must catch up by itself within one sweep."""
    out = Outcome("1. Stigg outage")
    marks = stack.log_marks()
    chosen = world.take(max(4, int(seconds // 15)))
    stack.no_webhooks()
    limits = {cid: grant(stack, world, cid) for cid in chosen}
    browsing = Browsing(stack, world, clients=4, pause=0.5)
    answers: dict[str, list[int]] = {}
    t_down = time.time()
    stack.emulator.faults(outage=True)
    try:
        gap = seconds / (len(chosen) + 1)
        for i, cid in enumerate(chosen, 1):
            time.sleep(max(0.0, t_down + i * gap - time.time()))
            answers[cid] = deliver_like_stigg(stack, event(cid))
        time.sleep(max(0.0, t_down + seconds - time.time()))
    finally:
        stack.emulator.clear_faults()
        stack.send_webhooks_to_us()
    t_up = time.time()
    budget = timing.sweep_interval + 2 * timing.steady_sweep + 30
    seen = wait_for_grants(stack, world, {c: limits[c] for c in chosen if 200 <= answers[c][-1] < 300}, t_up, budget)
    fresh = wait_all_fresh(stack, world, t_up, budget)
    samples = browsing.stop()
    during = between(samples, t_down, t_up)
    bad = [s for s in during if s.status != 200]
    unaged = sorted({s.kind for s in during if s.status == 200 and not s.aged})
    accepted = sum(1 for a in answers.values() if 200 <= a[-1] < 300)
    out.figure("outage", f"{seconds:.0f} s")
    out.figure("pages during the outage", pages_line(during))
    out.figure("pages answered 200 / showing their age", f"{len(during) - len(bad)} / "
               f"{sum(1 for s in during if s.status == 200 and s.aged)} of {len(during)}")
    out.figure("webhooks during the outage: answered 2xx", f"{accepted} of {len(chosen)}")
    out.figure("their changes in the read model after recovery",
               f"{len(seen)} of {accepted}, the last {max(seen.values(), default=0):.1f} s after recovery")
    out.figure("every customer read again after recovery",
               f"{fresh:.1f} s (sweep interval {timing.sweep_interval:.0f} s, a sweep {timing.steady_sweep:.0f} s)"
               if fresh is not None else f"not within {budget:.0f} s")
    logs_and_processes(out, stack, marks)
    out.expect(bool(during) and not bad, f"pages not 200 during the outage: {_statuses(bad)}")
    out.expect(not unaged, f"pages without their age during the outage: {unaged}")
    out.expect(accepted == len(chosen), f"webhooks not accepted: {answers}")
    out.expect(len(seen) == accepted, f"events answered 2xx never in the read model: {sorted(set(chosen) - set(seen))}")
    out.expect(fresh is not None, f"customers still not read again {budget:.0f} s after recovery")
    out.headline = f"pages {len(during) - len(bad)}/{len(during)} ok; all fresh {_s(fresh)} after recovery"
    return out


# --- 2. 429 storm, then slow answers ------------------------------------------------------


def storm_and_slow(stack: FullStack, world: World, timing: Timing, seconds: float, storm_rps: float,
                   latency_ms: float) -> Outcome:
    """Two phases of ``seconds`` each, a sweep started at each and webhooks arriving: Stigg
    answering 429 above ``storm_rps`` (below our STIGG_MAX_RPS), then every answer
    ``latency_ms`` late. The requests Stigg counts in any one second must stay within
    STIGG_MAX_RPS, the queues must not grow without bound (they drain once it is over),
    and pages stay fast."""
    out = Outcome("2. 429 storm and slow answers")
    marks = stack.log_marks()
    max_rps = stack.settings.max_rps
    pages_per_sweep = math.ceil(len(world.customers) / CUSTOMERS_PER_SWEEP_PAGE)
    stack.send_webhooks_to_us()
    watch = QueueWatch(stack)
    limits: dict[str, int] = {}
    heads = []
    for label, faults in (("429 storm", {"rateLimitPerSecond": storm_rps, "retryAfterSeconds": 1}),
                          ("slow answers", {"latencyMs": latency_ms})):
        browsing = Browsing(stack, world, clients=4, pause=0.5)
        stack.emulator.data("DELETE", "/_emulator/stats")
        t0 = time.time()
        stack.emulator.faults(**faults)
        try:
            stack.sweep_now()
            while time.time() < t0 + seconds:
                for cid in world.take(1):
                    limits[cid] = grant(stack, world, cid)
                time.sleep(3)
        finally:
            stack.emulator.clear_faults()
        stats = stack.emulator.data("GET", "/_emulator/stats")
        samples = between(browsing.stop(), t0, time.time())
        queues = [r for at, r in watch.readings if at >= t0]
        pages = page_figures(samples)
        name = (f"{label} ({storm_rps:g} req/s allowed by Stigg)" if "rateLimitPerSecond" in faults
                else f"{label} ({latency_ms:.0f} ms each)")
        out.figure(f"{name}: Stigg requests, most in one second",
                   f"{stats['requests']} ({stats['requests'] / seconds:.1f}/s), max {stats['maxPerSecond']} in one "
                   f"second (STIGG_MAX_RPS {max_rps:g}), {stats['throttled']} answered 429")
        out.figure(f"{label}: longest queues seen (hot / sweep)",
                   f"{max((q.get('hot', 0) for q in queues), default=0)} / "
                   f"{max((q.get('sweep', 0) for q in queues), default=0)} ({len(queues)} readings)")
        out.figure(f"{label}: pages", pages_line(samples))
        out.expect(stats["maxPerSecond"] <= max_rps,
                   f"{label}: {stats['maxPerSecond']} requests in one second, over STIGG_MAX_RPS {max_rps:g}")
        out.expect(pages["errors"] == 0, f"{label}: {pages['errors']} page errors")
        out.expect(pages["p95"] < 1000, f"{label}: pages p95 {pages['p95']:.0f} ms (over 1 s)")
        heads.append(f"{label}: max {stats['maxPerSecond']}/s, page p95 {ms(pages['p95'])}")
    t_clear = time.time()
    drain_budget = 2 * timing.sweep_interval + 2 * timing.steady_sweep + 60
    drained = wait_until(lambda: (q := stack.queue_lengths()) is not None and sum(q.values()) == 0, drain_budget, 2)
    drain = time.time() - t_clear
    watch.stop()
    seen = wait_for_grants(stack, world, limits, t_clear, drain_budget)
    out.figure("queues empty again after the faults", f"{drain:.0f} s" if drained else
               f"not within {drain_budget:.0f} s")
    out.figure("grants made meanwhile, in the read model", f"{len(seen)} of {len(limits)}")
    logs_and_processes(out, stack, marks)
    # at most one sweep's work waits: its pages, and an alert evaluation for each page done
    out.expect(watch.max("sweep") <= 2 * pages_per_sweep + 10,
               f"the sweep queue reached {watch.max('sweep')} tasks: more than one sweep's {pages_per_sweep} pages "
               f"and their alert evaluations")
    out.expect(drained, f"the queues did not drain within {drain_budget:.0f} s of the faults' end")
    out.expect(len(seen) == len(limits), f"grants never in the read model: {sorted(set(limits) - set(seen))}")
    out.headline = "; ".join(heads) + f"; queues max {watch.max('hot')}/{watch.max('sweep')}"
    return out


# --- 3. the read model's Redis restarted ----------------------------------------------------


def redis_restart(stack: FullStack, world: World, timing: Timing, seconds: float) -> Outcome:
    """The read model's Redis stopped under load (people browsing, a sweep running) and
    started again ``seconds`` later on its port, empty. Meanwhile every page is the clear
    503 page, never a traceback in any log; afterwards web and workers carry on without a
    restart and the next sweep fills the read model again."""
    out = Outcome("3. Redis restarted")
    marks = stack.log_marks()
    browsing = Browsing(stack, world, clients=8, pause=0.2)
    stack.sweep_now()
    time.sleep(3)
    stack.stop_read_model()
    t_down = time.time()  # stopped: its process is gone
    time.sleep(min(3.0, seconds / 2))
    health_down = _health(stack)
    time.sleep(max(0.0, t_down + seconds - time.time()))
    stack.start_read_model()
    t_up = time.time()
    budget = timing.sweep_interval + 2 * timing.discovery_sweep + 60
    filled = wait_all_fresh(stack, world, t_up, budget) is not None
    t_full = time.time()
    health_up = _health(stack)
    samples = browsing.stop()
    # Requests sent just before it went may be past their reads; those sent in the last
    # moment before t_up (once it answers PING) may find it back, empty.
    during = between(samples, t_down + 0.5, t_up - 1.0)
    # the audit log is the database's: its page needs no Redis
    unclear = [s for s in during if not s.unavailable_page and not (s.kind == "audit" and s.status == 200)]
    after = between(samples, t_up, t_full + 1)
    first_ok = min((s.at for s in after if s.status == 200), default=None)
    failed_after = [s for s in after if s.status not in (200, 404)]  # 404: a customer not rebuilt yet
    out.figure("Redis down", f"{seconds:.0f} s")
    out.figure("pages while down: the 503 page", f"{len(during) - len(unclear)} of {len(during)}")
    out.figure("/healthz while down / after", f"{health_down} / {health_up}")
    out.figure("first page answered 200 after the restart",
               f"{first_ok - t_up:.1f} s after" if first_ok is not None else "none")
    out.figure("pages after the restart not 200 or 404 (not rebuilt yet)", f"{len(failed_after)} of {len(after)}"
               + (f": {_statuses(failed_after)}" if failed_after else ""))
    out.figure("read model full again (every customer read after the restart)",
               f"{t_full - t_up:.1f} s (sweep interval {timing.sweep_interval:.0f} s, a discovery sweep "
               f"{timing.discovery_sweep:.0f} s)" if filled else f"not within {budget:.0f} s")
    logs_and_processes(out, stack, marks)
    out.expect(bool(during) and not unclear, f"pages while Redis was down not the 503 page: {_statuses(unclear)}")
    out.expect(health_down == 503 and health_up == 200, f"/healthz {health_down} while down, {health_up} after")
    out.expect(first_ok is not None, "no page answered 200 after the restart")
    out.expect(not [s for s in failed_after if s.at > t_up + 5], f"pages failing after the restart: "
               f"{_statuses(failed_after)}")
    out.expect(filled, f"the read model was not full again within {budget:.0f} s")
    out.headline = f"503 page {len(during) - len(unclear)}/{len(during)}; full again {t_full - t_up:.0f} s after"
    return out


def _health(stack: FullStack) -> int:
    try:
        return stack.http.get("/healthz", timeout=15).status_code
    except httpx.HTTPError:
        return 0


# --- 4. the broker down while webhooks arrive ----------------------------------------------


def broker_down(stack: FullStack, world: World, timing: Timing, seconds: float) -> Outcome:
    """The broker's Redis stopped for ``seconds`` (then started again, empty) while Stigg
    changes customers and its webhooks arrive; the emulator's sender retries what is not
    answered 2xx (3 at once, then 3 more ``seconds``/2 apart). Every event must end
    answered 2xx and its change be in the read model; pages keep rendering meanwhile."""
    out = Outcome("4. broker down")
    delay = max(5.0, seconds / 2)
    stack.send_webhooks_to_us(retry_delay=delay)
    marks = stack.log_marks()
    web_log_mark = len(stack.web.log())
    chosen = world.take(max(4, int(seconds // 5)))
    limits: dict[str, int] = {}
    browsing = Browsing(stack, world, clients=4, pause=0.5)
    t_down = time.time()
    stack.stop_broker()
    try:
        gap = seconds / (len(chosen) + 1)
        for i, cid in enumerate(chosen, 1):
            time.sleep(max(0.0, t_down + i * gap - time.time()))
            limits[cid] = grant(stack, world, cid)
        time.sleep(max(0.0, t_down + seconds - time.time()))
    finally:
        stack.start_broker()
    t_up = time.time()
    budget = 3 * delay + timing.sweep_interval + timing.steady_sweep + 60
    seen = wait_for_grants(stack, world, limits, t_up, budget)
    # every event delivered, or given up after its 7th attempt (1 + 3 at once + 3 later)
    wait_until(lambda: not [m for m in _outbox(stack, limits) if not m["delivered"] and m["attempts"] < 7],
               3 * delay + 30, 1.0)
    samples = browsing.stop()
    outbox = _outbox(stack, limits)
    delivered = [m for m in outbox if m["delivered"]]
    answered_503 = stack.web.log()[web_log_mark:].count("not queued, answered 503")
    during = between(samples, t_down, t_up)
    out.figure("broker down", f"{seconds:.0f} s; Stigg's retries {delay:.0f} s apart after 3 at once")
    out.figure("webhook events sent / answered 2xx in the end",
               f"{len(outbox)} / {len(delivered)} (first try {sum(1 for m in delivered if m['attempts'] == 1)},"
               f" after retries {sum(1 for m in delivered if m['attempts'] > 1)})")
    out.figure("answered 503 (Stigg retried them)", f"{answered_503}")
    out.figure("events given up by the sender", f"{len(outbox) - len(delivered)}")
    out.figure("changes in the read model after the broker came back",
               f"{len(seen)} of {len(limits)}, the last {max(seen.values(), default=0):.1f} s after")
    out.figure("pages while the broker was down", pages_line(during))
    logs_and_processes(out, stack, marks)
    out.expect(len(delivered) == len(outbox) and outbox, f"events never answered 2xx: "
               f"{[(m['type'], m['customer'], m['last_error']) for m in outbox if not m['delivered']]}")
    out.expect(len(seen) == len(limits), f"changes never in the read model: {sorted(set(limits) - set(seen))}")
    out.expect(page_figures(during)["errors"] == 0, f"pages failing while the broker was down: "
               f"{_statuses([s for s in during if s.status == 0 or s.status >= 500])}")
    out.headline = (f"{len(delivered)}/{len(outbox)} events 2xx ({answered_503} answered 503 first); "
                    f"{len(seen)}/{len(limits)} changes seen, last {max(seen.values(), default=0):.0f} s after")
    return out


def _outbox(stack: FullStack, limits: dict[str, int]) -> list[dict[str, Any]]:
    """The emulator's webhook messages about these customers (newest 200 of its outbox)."""
    found = []
    for m in stack.emulator.data("GET", "/_emulator/webhooks"):
        cid = m["message"]["data"].get("customerId")
        if cid in limits:
            found.append({"customer": cid, "type": m["message"]["type"], "attempts": m["attempts"],
                          "delivered": m["delivered"], "last_error": m["lastError"]})
    return found


# --- 5. a worker killed in the middle of a sweep ------------------------------------------


def worker_killed(stack: FullStack, world: World, timing: Timing) -> Outcome:
    """SIGKILL the sweep worker while it refreshes a sweep's pages (a new one takes its
    place at once). Customers are read back whole all along: none may ever be half
    written. The pages it held (acks_late) must come back and run again within the
    visibility timeout and the broker's restore cycle: minutes, not an hour."""
    out = Outcome("5. worker SIGKILLed")
    marks = stack.log_marks()
    watch = ConsistencyWatch(stack.rm, world.customers)
    broker = stack.broker_client()
    try:
        t0 = time.time()
        stack.sweep_now()
        pages = math.ceil(len(world.customers) / CUSTOMERS_PER_SWEEP_PAGE)
        wait_until(lambda: len(_held_pages(broker)) >= min(4, stack.settings.sweep_threads, pages), 120, 0.1)
        held = _held_pages(broker)
        t_kill = time.time()
        stack.kill_sweep_worker()
        budget = stack.settings.visibility_timeout + 240
        done = wait_until(lambda: all(f"refresh_customer_page[{tid}] succeeded" in stack.sweep.log() for tid in held),
                          budget, 2.0)
        t_done = time.time()
        redelivered = [tid for tid in held if f"refresh_customer_page[{tid}] received" in stack.sweep.log()]
    finally:
        watch.stop()
        broker.close()
    customers = sum(len(c) for c in held.values())
    out.figure("pages held by the killed worker", f"{len(held)} ({customers} customers)")
    out.figure("of them run again by the new worker",
               f"{len(redelivered)}, all done {t_done - t_kill:.0f} s after the kill (visibility timeout "
               f"{stack.settings.visibility_timeout} s)" if done else f"{len(redelivered)}; not all within {budget} s")
    out.figure("customers read back whole meanwhile", f"{watch.checked} reads, {len(watch.found)} half-written")
    logs_and_processes(out, stack, marks)
    out.expect(bool(held), "the worker held no sweep page when killed")
    out.expect(done, f"pages held by the killed worker not run again within {budget} s")
    out.expect(watch.checked > 0 and not watch.found, f"half-written customers seen: {watch.found[:5]}")
    out.headline = (f"{len(held)} pages redone {t_done - t_kill:.0f} s after; {watch.checked} reads, "
                    f"{len(watch.found)} half-written")
    return out


def _held_pages(broker: Any) -> dict[str, list[str]]:
    """Sweep pages handed to a worker and not yet acknowledged (kombu's ``unacked`` hash):
    task id -> the customers of its page."""
    held = {}
    for raw in broker.hvals("unacked"):
        message = json.loads(raw)[0]
        if message["headers"].get("task") != "dashboard.tasks.refresh_customer_page":
            continue
        args = json.loads(base64.b64decode(message["body"]))[0]
        held[message["headers"]["id"]] = [c["id"] for c in args[0]]
    return held


# --- 6. load ----------------------------------------------------------------------------------


def load(stack: FullStack, world: World, timing: Timing, seconds: float, clients: int,
         think_seconds: float = 0.0) -> Outcome:
    """``clients`` people signed in through the sign-in form, each opening page after page
    of every kind, ``think_seconds`` apart (0: at once, a closed loop), for ``seconds``,
    while a full sweep runs: no errors at all. Beside the time each client waited, the
    web's own time per page (its /metrics request histograms, read before and after): the
    difference is time spent waiting for the web, not in it."""
    out = Outcome("6. load")
    marks = stack.log_marks()
    t_sign = time.time()
    signed = sign_in_all(stack, clients)
    sign_in_seconds = time.time() - t_sign
    t0 = time.time()
    stack.sweep_now()
    before = server_times.page_histograms(stack.metrics() or "")
    browsing = Browsing(stack, world, clients, pause=think_seconds, signed_in=signed)
    time.sleep(seconds)
    samples = browsing.stop()
    served = server_times.difference(server_times.page_histograms(stack.metrics() or ""), before)
    refreshed = len(world.customers) - stale_count(stack, world, t0)
    f = page_figures(samples)
    server = server_times.merged([served.get(v, {}) for v in server_times.VIEW_OF_KIND.values()])
    out.figure("signed-in clients", f"{clients} (signed in through the form in {sign_in_seconds:.1f} s), "
               + (f"each {think_seconds:g} s between pages" if think_seconds else "no pause between pages"))
    out.figure("web", f"gunicorn, {stack.settings.web_workers} workers")
    out.figure("pages served", f"{f['requests']} in {seconds:.0f} s ({f['requests'] / seconds:.0f}/s)")
    out.figure("page time (as the clients waited)", f"p50 {ms(f['p50'])}, p95 {ms(f['p95'])}, max {ms(f['max'])}")
    out.figure("server time (the web's own, estimated in /metrics buckets)", _server_line(server))
    out.figure("errors (5xx or no answer)", f"{f['errors']}")
    for kind in PAGE_KINDS:
        k = page_figures([s for s in samples if s.kind == kind])
        own = _server_line(served.get(server_times.VIEW_OF_KIND[kind], {}), count=False)
        out.figure(f"  {kind}", f"n={k['requests']}, p50 {ms(k['p50'])}, p95 {ms(k['p95'])}, max {ms(k['max'])}; "
                   f"server {own}")
    out.figure("customers refreshed by the sweep meanwhile", f"{refreshed} of {len(world.customers)}")
    logs_and_processes(out, stack, marks)
    out.expect(f["errors"] == 0,
               f"{f['errors']} errors: {_statuses([s for s in samples if s.status == 0 or s.status >= 500])}")
    out.expect(not [s for s in samples if s.status != 200], f"pages not 200: "
               f"{_statuses([s for s in samples if s.status != 200])}")
    server_p95 = server_times.quantile(0.95, server)
    out.headline = (f"{f['requests']} pages, {f['errors']} errors, p50 {ms(f['p50'])}, p95 {ms(f['p95'])} "
                    f"(server p95 {ms(server_p95 * 1000) if server_p95 is not None else 'n/a'})")
    return out


def _server_line(buckets: server_times.Buckets, count: bool = True) -> str:
    """p50 / p95 of the web's own time (estimated within /metrics' histogram buckets)."""
    p50, p95 = server_times.quantile(0.5, buckets), server_times.quantile(0.95, buckets)
    if p50 is None or p95 is None:
        return "not reported"
    n = f"n={server_times.count(buckets)}, " if count else ""
    return f"{n}p50 {ms(p50 * 1000)}, p95 {ms(p95 * 1000)}"


def _statuses(samples: list[Sample]) -> str:
    counts: dict[str, int] = {}
    for s in samples:
        key = f"{s.kind} {s.status or s.error[:60]}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())[:8])


def _s(value: float | None) -> str:
    return f"{value:.0f} s" if value is not None else "never"
