"""A customer with a governance hierarchy worth looking at, built in a running emulator
over its REST API (the governance page's tests, in Django's client and in Chromium)."""
from __future__ import annotations

from typing import Any

from . import emulator_world as w
from .servers import Emulator

HOSTILE = "<script>alert(1)</script>"
AGENT = "bot/7:x"
WINDOW_BEGAN_DAYS_AGO = 10

# The hierarchy (usage on API calls; limits in brackets):
#   eng (dept) [100]              100 used: spent, so everything below it is blocked
#     research (team) [500]       100 used: has budget left, blocked by eng
#       ada (user) [unlimited]    40 used, tracked (an assignment places an entity); research has a
#                                 scoped budget [80] for ada
#       bot/7:x (agent) [1000]    60 used
#     platform (team) [10]        8 used (80 %): first by utilization, last by usage among eng's teams
#   sales (dept) [1000]           50 used
#     emea (team) [200]           50 used
#       bob (user) [unlimited]    50 used, tracked
#   lonely (user)                 no budget anywhere
def build(e: Emulator) -> dict[str, Any]:
    """The world above, plus a customer without entities. Returns their ids and the feature's."""
    calls = w.feature(e, "NUMBER", displayName="API calls")
    product = w.product(e)
    plan = w.plan(e, product, [{"id": calls, "usageLimit": 100_000, "resetPeriod": "MONTH"}], displayName="Scale")
    acme = w.customer(e, name="Acme Governed")
    w.subscribe(e, acme, plan)
    e.data("PUT", "/api/v1-beta/entity-types", json={"types": [
        {"id": "dept", "displayName": "Department", "attributionKeys": ["deptId"]},
        {"id": "team", "displayName": "Team", "attributionKeys": ["teamId"]},
        {"id": "user", "displayName": "User", "attributionKeys": ["userId"]},
        {"id": "agent", "displayName": "Agent", "attributionKeys": ["agentId"]}]})
    e.data("PUT", f"/api/v1-beta/customers/{acme}/entities", json={"entities": [
        {"id": "eng", "entityTypeId": "dept", "displayName": "Engineering"},
        {"id": "research", "entityTypeId": "team", "displayName": "Research"},
        {"id": "platform", "entityTypeId": "team", "displayName": "Platform"},
        {"id": "ada", "entityTypeId": "user", "displayName": "Ada"},
        {"id": AGENT, "entityTypeId": "agent", "displayName": HOSTILE},
        {"id": "sales", "entityTypeId": "dept", "displayName": "Sales"},
        {"id": "emea", "entityTypeId": "team", "displayName": "EMEA"},
        {"id": "bob", "entityTypeId": "user", "displayName": "Bob"},
        {"id": "lonely", "entityTypeId": "user", "displayName": "Lonely"}]})

    def budget(entity: str, limit: float | None, parent: str | None = None, **extra) -> dict:
        item = {"entityId": entity, "featureId": calls, "usageLimit": limit, "cadence": "P1M", **extra}
        if parent:
            item["parentId"] = parent
        return item

    e.set_clock_offset(-WINDOW_BEGAN_DAYS_AGO * 86400)  # the budgets' windows began that long ago
    e.data("PUT", f"/api/v1-beta/customers/{acme}/assignments", json={"assignments": [
        budget("eng", 100), budget("sales", 1000),
        budget("research", 500, "eng"), budget("platform", 10, "eng"), budget("emea", 200, "sales")]})
    e.data("PUT", f"/api/v1-beta/customers/{acme}/assignments", json={"assignments": [
        budget(AGENT, 1000, "research"), budget("bob", None, "emea"),
        budget("research", 80, scopeEntityIds=["ada"])]})
    e.data("PUT", f"/api/v1-beta/customers/{acme}/assignments", json={"assignments": [
        budget("ada", None, "research")]})
    e.set_clock_offset(0)
    w.report_usage(e, acme, calls, 40, dimensions={"userId": "ada"})
    w.report_usage(e, acme, calls, 60, dimensions={"agentId": AGENT})
    w.report_usage(e, acme, calls, 8, dimensions={"teamId": "platform"})
    w.report_usage(e, acme, calls, 50, dimensions={"userId": "bob"})

    bare = w.customer(e, name="No Entities Ltd")
    w.subscribe(e, bare, plan)
    return {"acme": acme, "bare": bare, "calls": calls}
