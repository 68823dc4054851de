"""Screenshots of the dashboard's pages at laptop size, for docs/screenshots/.

    python scripts/screenshots.py [--url http://127.0.0.1:8000] [--user demo --password demo-password]

Run against `make run`. Uses Debian's Chromium (/usr/bin/chromium) through Playwright.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="demo")
    parser.add_argument("--password", default="demo-password")
    parser.add_argument("--customer", default="", help="customer id for the customer page (default: the "
                        "first of the overview's nearest-their-limit list)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--full-page", action="store_true")
    parser.add_argument("--governed", default="", help="customer id for the governance pages (default: the "
                        "customer with the largest hierarchy on the near-limit page's first budget row)")
    parser.add_argument("--only", choices=("audit", "alerts", "delivery", "accounts", "sign-in-paused", "bulk"),
                        help="sign in and take only these pages")
    parser.add_argument("--emulator", default="", help="the emulator's URL: the bulk result then shows a row "
                        "Stigg failed (an injected 503)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        page.goto(f"{args.url}/accounts/login/")
        page.screenshot(path=str(out / "sign-in.png"))
        page.fill("#id_username", args.user)
        page.fill("#id_password", args.password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{args.url}/")
        if args.only:
            pages = {"audit": audit_log, "alerts": alerts, "delivery": delivery, "accounts": my_accounts,
                     "sign-in-paused": sign_in_paused,
                     "bulk": lambda *a: bulk_grant(*a, emulator=args.emulator)}
            pages[args.only](context, args.url, out)
            browser.close()
            return
        page.wait_for_selector(".chart .main-svg")
        page.screenshot(path=str(out / "overview.png"), full_page=args.full_page)
        first = args.customer or page.locator("#overview-live table a").first.get_attribute("href").split("#")[0]
        page.goto(f"{args.url}/customers/?sort=utilization")
        page.screenshot(path=str(out / "customers.png"), full_page=args.full_page)
        page.goto(first if first.startswith("http") else args.url + first if first.startswith("/")
                  else f"{args.url}/customers/{first}")
        page.wait_for_selector("#usage-charts .main-svg", timeout=30_000)
        page.screenshot(path=str(out / "customer.png"), full_page=args.full_page)
        page.screenshot(path=str(out / "customer-full.png"), full_page=True)
        # A customer with governance budgets, from the overview's list of nearest budgets.
        budget_link = context.new_page()
        budget_link.goto(f"{args.url}/")
        links = budget_link.locator("#overview-live table a[href*='governance']")
        governed = (f"/customers/{args.governed}#governance" if args.governed or not links.count()
                    else links.first.get_attribute("href"))
        budget_link.goto(args.url + governed)
        budget_link.wait_for_selector("#usage-charts .main-svg", timeout=30_000)
        budget_link.screenshot(path=str(out / "customer-governance.png"))
        budget_link.close()
        governance_pages(context, args.url, out, args.governed)
        promotion_pages(context, args.url, out, first)
        audit_log(context, args.url, out)
        alerts(context, args.url, out)
        delivery(context, args.url, out)
        sign_in_paused(context, args.url, out)
        bulk_grant(context, args.url, out, emulator=args.emulator)
        browser.close()
    print(f"screenshots in {out}")


def governance_pages(context, url: str, out: Path, governed: str) -> None:
    """The governance tree (top level, then a department opened and a blocked node in
    focus), the ranked list, the sunburst, the budget form, the near-limit view and the
    entity types."""
    page = context.new_page()
    page.goto(f"{url}/near-limit/")
    page.screenshot(path=str(out / "near-limit.png"))
    if not governed:
        first = page.locator("tbody [data-entity-id] a[href*='/governance']").first.get_attribute("href")
        governed = first.split("/customers/", 1)[1].split("/governance", 1)[0]
    base = f"{url}/customers/{governed}/governance"
    page.goto(base)
    page.screenshot(path=str(out / "governance-tree.png"))
    page.locator("tbody.tnode a.toggle[aria-expanded=false]").first.click()
    page.wait_for_selector("tbody.tnode.depth-1")
    page.locator("tbody.tnode.depth-1").first.evaluate("el => el.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "governance-tree-open.png"))
    page.goto(f"{base}?view=ranked")
    page.screenshot(path=str(out / "governance-ranked.png"))
    page.goto(f"{base}?chart=sunburst#sunburst")
    page.wait_for_selector("#sunburst .main-svg")
    page.locator("#sunburst").scroll_into_view_if_needed()
    page.screenshot(path=str(out / "governance-sunburst.png"))
    page.goto(base)
    page.locator("a.budget-button").first.click()
    page.wait_for_selector("#budget-form")
    page.screenshot(path=str(out / "budget-form.png"))
    page.goto(f"{url}/governance/entity-types")
    page.screenshot(path=str(out / "entity-types.png"))
    page.close()


def promotion_pages(context, url: str, out: Path, customer: str) -> None:
    """The grant modal (its form, then its preview with warnings; nothing is confirmed, so
    the demo data stays as it was) and the promotions ending in the next 30 days."""
    page = context.new_page()
    page.goto(customer if customer.startswith("http") else url + customer if customer.startswith("/")
              else f"{url}/customers/{customer}")
    page.locator("#metered a.row-action").first.click()
    modal = page.locator("dialog#modal")
    modal.locator("#id_limit").wait_for()
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "promotion-grant.png"))
    modal.locator("#id_limit").fill("250000")
    modal.locator("#id_period").select_option("lifetime")
    modal.locator("#id_reason").fill("Their import script blew through the quota; covering it while they fix it")
    modal.locator("#id_ticket").fill("https://support.example.com/tickets/4182")
    modal.get_by_role("button", name="Preview the grant").click()
    modal.locator(".change-table").wait_for()
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "promotion-grant-preview.png"))
    page.goto(f"{url}/promotions/expiring?days=30")
    page.screenshot(path=str(out / "promotions-expiring.png"))
    page.goto(f"{url}/approvals/")
    page.screenshot(path=str(out / "approvals.png"))
    page.close()


def audit_log(context, url: str, out: Path) -> None:
    """The audit log with a filter applied (promotions granted)."""
    page = context.new_page()
    page.goto(f"{url}/audit/?action=promotion.grant")
    page.screenshot(path=str(out / "audit-log.png"))
    page.close()


def alerts(context, url: str, out: Path) -> None:
    """The open alerts, newest first (the nav's count beside "Alerts")."""
    page = context.new_page()
    page.goto(f"{url}/alerts/")
    page.screenshot(path=str(out / "alerts.png"))
    page.close()


def delivery(context, url: str, out: Path) -> None:
    """The settings page with a daily digest, a notice address and a webhook saved (the
    person's choices are put back afterwards), and the digest email as it would go out now
    (its HTML part, served by /settings/digest)."""
    page = context.new_page()
    page.goto(f"{url}/settings/")
    before = {name: page.input_value(f"[name={name}]") for name in ("notice_email", "notice_webhook_url")}
    digest_before = page.locator("[name=digest]:checked").get_attribute("value")
    page.check("[name=digest][value=daily]")
    page.fill("[name=notice_email]", "demo@example.com")
    page.fill("[name=notice_webhook_url]", "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXX")
    page.click("text=Save")
    page.wait_for_selector(".message-success")
    page.screenshot(path=str(out / "settings.png"))
    page.goto(f"{url}/settings/digest")
    page.screenshot(path=str(out / "alert-digest.png"))
    page.goto(f"{url}/settings/")
    page.check(f"[name=digest][value={digest_before}]")
    for name, value in before.items():
        page.fill(f"[name={name}]", value)
    page.click("text=Save")
    page.close()


def my_accounts(context, url: str, out: Path) -> None:
    """The lists as a customer-success manager opens them: "My accounts" (the demo login
    owns one of the demo team's books), and the customers list switched to every account."""
    page = context.new_page()
    for name, path in (("customers", "/customers/?sort=utilization"), ("near-limit", "/near-limit/"),
                       ("expiring", "/promotions/expiring?days=30"), ("alerts", "/alerts/")):
        page.goto(url + path)
        page.screenshot(path=str(out / f"my-accounts-{name}.png"))
    page.locator("p.mine a").click()
    page.wait_for_selector("p.mine[data-mine=off]")
    page.screenshot(path=str(out / "my-accounts-alerts-every-account.png"))
    page.close()


def sign_in_paused(context, url: str, out: Path) -> None:
    """The sign-in page after too many wrong passwords, signed out, for a made-up username
    (so no real login is paused)."""
    fresh = context.browser.new_context(viewport={"width": 1366, "height": 768})
    page = fresh.new_page()
    for attempt in range(10):
        page.goto(f"{url}/accounts/login/")
        page.fill("#id_username", "jordan")
        page.fill("#id_password", f"not-the-password-{attempt}")
        page.click("button[type=submit]")
        if page.locator("text=Sign-in paused").count():
            break
    page.screenshot(path=str(out / "sign-in-paused.png"))
    fresh.close()


def bulk_grant(context, url: str, out: Path, emulator: str = "") -> None:
    """Rows ticked on the near-limit view; a dry run from a CSV of near-limit customers with a
    row that changes nothing, one for an unknown customer and one with a bad limit
    (confirmed: it grants in the demo's emulator); its result once the job is done, with
    Stigg failing one customer when ``emulator`` is given."""
    import json

    import httpx

    page = context.new_page()
    page.goto(f"{url}/near-limit/?capability=api-calls&mine=0")  # every account: the demo login owns few
    boxes = page.locator("#near-limit-table tbody input[name=row]")
    for i in range(min(3, boxes.count())):
        boxes.nth(i).check()
    page.screenshot(path=str(out / "near-limit-bulk-ticked.png"))
    picked = []
    for i in range(min(4, boxes.count())):  # each at twice its limit now: no lead needed (under 10x the plan)
        limit = boxes.nth(i).locator("xpath=ancestor::tr").locator("td.num").inner_text().split("/")[1]
        picked.append((*json.loads(boxes.nth(i).get_attribute("value")), 2 * int(limit.strip().replace(",", ""))))
    picked[-1] = (*picked[-1][:2], picked[-1][2] // 4)  # half its limit now: it would change nothing
    lines = ["customer,feature,limit,period,end_date"]
    lines += [f"{cid},{fid},{limit},1 month," for cid, fid, limit in picked]
    lines += ["no-such-customer,api-calls,50000,1 month,", f"{picked[0][0]},api-calls,lots,1 month,"]
    page.goto(f"{url}/bulk/")
    page.set_input_files("#id_file", files=[{"name": "quarter-end.csv", "mimeType": "text/csv",
                                             "buffer": "\n".join(lines).encode()}])
    page.fill("#id_reason", "Quarter-end crunch: room for the last week of the quarter")
    page.fill("#id_ticket", "https://support.example.com/tickets/5120")
    page.get_by_role("button", name="Upload and show the dry run").click()
    page.wait_for_selector("#dry-run")
    page.screenshot(path=str(out / "bulk-dry-run.png"))
    faults = httpx.Client(base_url=emulator, headers={"X-API-KEY": "server-emulator-demo-key"}) if emulator else None
    if faults:
        faults.put("/_emulator/faults", json={"failingCustomerIds": [picked[1][0]]}).raise_for_status()
    try:
        page.get_by_role("button", name="Confirm: grant the ticked rows").click()
        page.wait_for_selector("#result", timeout=120_000)
    finally:
        if faults:
            faults.delete("/_emulator/faults").raise_for_status()
            faults.close()
    page.screenshot(path=str(out / "bulk-result.png"))
    page.close()


if __name__ == "__main__":
    main()

