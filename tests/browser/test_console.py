"""The web console in Chromium against a real ``run_bot.py`` process: an incident arrives live,
is acknowledged and suppressed from its card, and its page shows evidence, root cause and
timeline; on the embedded default, Auto-resolve on a card fixes a simulated scenario and
verification resolves the incident.

Chromium is the system's (``chromium`` on PATH). Without it these tests skip, unless
``REQUIRE_BROWSER=1``, which makes them fail instead.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.botprocess import FAST_RULE_ID as FAST_RULE
from tests.botprocess import BotProcess

# chromium first: without it nothing starts; the page closes before the bot stops
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LIVE_TIMEOUT_MS = 20_000


@pytest.fixture
def chromium() -> str:
    """The system's Chromium; skips (or fails with REQUIRE_BROWSER=1) before a bot starts."""
    executable = shutil.which("chromium")
    if executable is None:
        reason = "chromium is not installed (no 'chromium' on PATH)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return executable


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    try:
        yield tab
    finally:
        context.close()


def test_an_incident_arrives_live_and_is_worked_from_its_card(
    bot: BotProcess, page: Page, tmp_path: Path
) -> None:
    page.goto(bot.url + "/")
    cards = page.locator("#incident-list article.card")
    expect(cards).to_have_count(0)
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#total")).to_have_text("0")
    expect(page.locator("#live")).to_have_class(re.compile(r"\bon\b"))  # the stream is open
    page.evaluate("window.sameDocument = true")

    bot.simulate("web-5xx-burst")

    card = cards.first
    expect(card).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(cards).to_have_count(1)
    expect(card.locator(".title")).to_have_text("HTTP 5xx burst on checkout")
    expect(card.locator(".sev")).to_have_text("HIGH")
    expect(card.locator(".state")).to_have_text("open")
    expect(page.locator("#empty")).to_have_count(0)
    expect(page.locator("#total")).to_have_text("1")
    human = card.get_attribute("data-human")
    assert human and re.fullmatch(r"INC-\d+", human)

    card.get_by_role("button", name="Acknowledge").click()
    expect(card.locator(".state")).to_have_text("acknowledged")
    expect(page.locator("#toast")).to_contain_text(f"{human}: acknowledged by console:local")

    card.get_by_role("button", name="Suppress").click()
    dialog = page.locator("#suppress-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".dlg-id")).to_have_text(human)
    dialog.locator("select[name=duration]").select_option("1h")
    reason = dialog.locator("textarea[name=reason]")
    submit = dialog.get_by_role("button", name="Suppress")

    submit.click()  # no reason: the browser refuses to submit and says why
    expect(dialog).to_be_visible()
    assert reason.evaluate("field => field.validationMessage")
    reason.fill("   ")  # blanks only: the console's own check
    submit.click()
    expect(dialog.locator(".error")).to_have_text("A reason is required.")
    expect(dialog).to_be_visible()
    expect(card.locator(".state")).to_have_text("acknowledged")

    reason.fill("deploying the pool fix")
    submit.click()
    expect(dialog).to_be_hidden()
    expect(card.locator(".state")).to_have_text("suppressed")
    expect(card.get_by_role("button", name="Unsuppress")).to_be_visible()
    assert page.evaluate("window.sameDocument") is True, "the page reloaded"
    assert bot.detail(human)["state"] == "suppressed"
    page.screenshot(path=str(tmp_path / "console-list.png"), full_page=True)

    card.locator("a.hid").click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+$"))
    incident = page.locator("[data-incident-page]")
    expect(incident.locator(".card .state")).to_have_text("suppressed")

    evidence = incident.locator(".evidence-table tr")
    assert evidence.count() > 0
    expect(evidence.first).to_contain_text("service=checkout")

    citations = incident.locator(".causes a.cite")
    expect(citations.first).to_be_visible()
    for href in citations.evaluate_all("links => links.map(a => a.getAttribute('href'))"):
        assert re.fullmatch(r"#ev-[0-9a-f]+", href), href
        row = incident.locator(f"tr[id='{href[1:]}']")
        expect(row).to_have_count(1)
        expect(row).to_have_class(re.compile(r"\bcited\b"))
    first = citations.first.get_attribute("href")
    citations.first.click()
    expect(page).to_have_url(re.compile(re.escape(first) + "$"))

    timeline = incident.locator("#timeline li")
    expect(timeline.filter(has_text="opened by rule web-5xx-burst")).to_have_count(1)
    expect(timeline.filter(has_text="acknowledged by console:local")).to_have_count(1)
    suppressed = timeline.filter(has_text="suppressed by console:local")
    expect(suppressed).to_have_count(1)
    expect(suppressed).to_contain_text("deploying the pool fix")
    # the chart of what the rule saw: its threshold line and the moment it fired
    chart = incident.locator("#chart svg.rule-chart")
    expect(chart).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(chart.locator("title").first).to_contain_text("web-5xx-burst")
    page.screenshot(path=str(tmp_path / "incident-page.png"), full_page=True)

    # the rules page: the rule shares its index's search, and says how it treats late events
    page.goto(bot.url + "/rules")
    expect(page.locator("table.feeds")).to_contain_text("search index=web")
    expect(page.locator("small.search").first).to_contain_text("shares")

    # a maintenance window added from the CLI shows on its page; the report counts the incident
    added = bot.cli(
        "maintenance",
        "add",
        "sunday-patching",
        "--days",
        "sun",
        "--start",
        "02:00",
        "--duration",
        "4h",
        "--timezone",
        "Europe/Berlin",
        "--match",
        "service=db*",
        "--reason",
        "OS patches",
    )
    assert added.returncode == 0, added.stdout + added.stderr
    page.get_by_role("link", name="Maintenance").click()
    window = page.locator("table.maintenance tr", has_text="sunday-patching")
    expect(window).to_contain_text("service=db*")
    expect(window).to_contain_text("OS patches")
    page.goto(bot.url + "/report?since=24h")
    expect(page.locator("table.report-rules")).to_contain_text("web-5xx-burst")


def test_the_custom_duration_field_shows_only_when_custom_is_chosen(
    bot: BotProcess, page: Page
) -> None:
    bot.simulate("web-5xx-burst")
    bot.first_incident()
    page.goto(bot.url + "/")
    page.get_by_role("button", name="Suppress").click()
    dialog = page.locator("#suppress-dialog")
    expect(dialog).to_be_visible()
    custom = dialog.locator("input[name=custom]")
    duration = dialog.locator("select[name=duration]")

    assert not custom.is_visible(), "a custom duration field shows while '1 hour' is chosen"
    duration.select_option("custom")
    expect(custom).to_be_visible()
    duration.select_option("30m")
    expect(custom).to_be_hidden()


PLAYBOOK = "demo-restart-upstream"
#: the card's remediation line through a run, in order (a fast step may skip the middle ones)
PROGRESS = (
    re.compile(
        rf"Auto-resolve with {PLAYBOOK} on service:checkout · confidence (\d\.\d\d) .* · ready"
    ),
    re.compile(rf"{PLAYBOOK} running: 0 of 1 steps done(; step 1 \(.+\) running)?"),
    re.compile(rf"{PLAYBOOK} running: 1 of 1 steps done"),
    re.compile(rf"{PLAYBOOK}: 1 of 1 steps done; verifying at \d\d:\d\d:\d\d UTC"),
)
VERIFIED = re.compile(rf"auto-resolved by {PLAYBOOK}, verified at \d\d:\d\d")

#: collects every remediation line the incident's card shows as the page replaces the card
WATCH_REMEDIATION = """(id) => {
  window.remediationLines = [];
  const seen = () => {
    const line = document.querySelector('#card-' + id + ' .remediation');
    const text = line ? line.textContent.trim() : '';
    const lines = window.remediationLines;
    if (text && lines[lines.length - 1] !== text) lines.push(text);
  };
  seen();
  new MutationObserver(seen).observe(document.body, {childList: true, subtree: true});
}"""


def rule_runs(bot: BotProcess) -> int:
    rules = bot.api.get("/api/v1/rules").json()["items"]
    state = next(r for r in rules if r["id"] == FAST_RULE)["state"]
    return int(state["runs"]) if state else 0


def stage(line: str) -> int:
    for index, pattern in enumerate(PROGRESS):
        if pattern.fullmatch(line):
            return index
    raise AssertionError(f"the card showed an unexpected remediation line: {line!r}")


def test_auto_resolve_fixes_a_simulated_scenario(
    demo_bot: BotProcess, page: Page, tmp_path: Path
) -> None:
    """The embedded default's loop: a simulated scenario keeps happening, Auto-resolve on its
    card ends it, and verification (its rule re-run over data newer than the run) resolves it."""
    bot = demo_bot
    page.goto(bot.url + "/")
    expect(page.locator("#live")).to_have_class(re.compile(r"\bon\b"))
    bot.simulate("web-5xx-burst")

    card = page.locator("#incident-list article.card").first
    expect(card).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    human, number = card.get_attribute("data-human"), card.get_attribute("data-incident")
    assert human and number
    card = page.locator(f"#card-{number}")
    # confidence over the application threshold (0.90): the button runs without an approval
    press = card.get_by_role("button", name="Auto-resolve", exact=True)
    expect(press).to_be_enabled(timeout=LIVE_TIMEOUT_MS)
    line = card.locator(".remediation")
    expect(line).to_have_text(PROGRESS[0])
    ready = PROGRESS[0].fullmatch(line.inner_text().strip())
    assert ready and float(ready[1]) >= 0.90, line.inner_text()
    expect(line).to_contain_text("rule confidence 0.85")
    page.evaluate(WATCH_REMEDIATION, number)

    press.click()
    dialog = page.locator("#plan-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".dlg-id")).to_have_text(human)
    plan = dialog.locator(".plan")
    confirm = dialog.get_by_role("button", name="Confirm")
    expect(confirm).to_be_visible()
    expect(plan).to_contain_text(
        f"Restart checkout's upstream (simulated) ({PLAYBOOK}) on service:checkout"
    )
    expect(plan).to_contain_text("Risk low · category application")
    expect(plan.locator(".confidence")).to_have_text(re.compile(r"Confidence (9\d|100)%: rule"))
    steps = plan.locator("ol.steps li")
    expect(steps).to_have_count(1)
    expect(steps).to_contain_text("end the web-5xx-burst scenario")
    expect(steps).to_contain_text("generator.end-scenario on generator:web-5xx-burst")
    expect(plan).to_contain_text("Then it waits 3s and runs the incident's rule again")
    expect(plan.locator(".verdict")).to_have_text("Gate: allowed, every check passed.")
    dialog.screenshot(path=str(tmp_path / "auto-resolve-dialog.png"))
    watcher = page.context.new_page()  # someone else follows the run on the incident's page
    watcher.goto(f"{bot.url}/incidents/{number}")
    expect(watcher.locator("#live")).to_have_class(re.compile(r"\bon\b"))

    confirm.click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#toast")).to_contain_text(f"{human}: RUN-1 ({PLAYBOOK}): running")
    # resolved: it leaves the list of active incidents, and the presser is told the outcome
    expect(card).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    notices = page.locator("#notices")
    expect(notices.locator(".count")).to_have_text("(1)")
    expect(notices.locator("li")).to_contain_text(
        re.compile(rf"{PLAYBOOK} ran on service:checkout for {human} .*Outcome: succeeded")
    )
    seen = page.evaluate("window.remediationLines")
    stages = [stage(text) for text in seen]
    assert stages == sorted(stages) and stages[0] == 0 and stages[-1] == 3, seen

    page.locator("select[name=state]").select_option("all")
    page.get_by_role("button", name="Filter").click()
    card = page.locator(f"#card-{number}")
    expect(card.locator(".state")).to_have_text("resolved")
    expect(card.locator(".status")).to_contain_text(f"Resolved by playbook:{PLAYBOOK}")
    expect(card.locator(".remediation")).to_have_text(VERIFIED)
    expect(card.get_by_role("button", name="Reopen")).to_be_visible()
    card.screenshot(path=str(tmp_path / "resolved-card.png"))

    shown = watcher.locator("[data-incident-page]")  # refreshed live at every change
    expect(shown.locator(".card .state")).to_have_text("resolved")
    expect(shown.locator(".card .remediation")).to_have_text(VERIFIED)
    expect(shown.locator("#timeline li").filter(has_text=VERIFIED)).to_have_count(2)
    watcher.close()

    # the rule keeps running every 2 s over a window that still holds the burst's lines: they
    # are not news, so the incident stays resolved
    runs = rule_runs(bot)
    bot.wait_for(lambda: rule_runs(bot) >= runs + 2, "two more runs of web-5xx-burst", 10)
    rule = next(r for r in bot.api.get("/api/v1/rules").json()["items"] if r["id"] == FAST_RULE)
    assert rule["state"]["last_hits"] > 0, rule  # it still counts them
    detail = bot.detail(human)
    assert (detail["state"], detail["state_changed_by"]) == ("resolved", f"playbook:{PLAYBOOK}")
    audit = bot.api.get(f"/api/v1/audit/incident/{human}")
    assert audit.status_code == 200, audit.text
    chain = audit.json()
    assert chain["intact"] is True
    entries = {e["action"]: e for e in chain["items"]}
    assert [e["action"] for e in chain["items"]] == [
        "detect",
        "rca",
        "playbook_started",
        "playbook_step_started",
        "playbook_step_finished",
        "playbook_verifying",
        "auto_resolve",
        "playbook_verified",
        "playbook_notified",
    ]
    detect = entries["detect"]["data"]
    assert detect["rule"] == "web-5xx-burst" and detect["query"] and detect["window"], detect
    rca = entries["rca"]
    assert (rca["reason"], rca["data"]["suggested_playbook"]) == ("ok", PLAYBOOK), rca
    pressed = entries["playbook_started"]  # the click and the gate's decision, with each check
    assert (pressed["actor"], pressed["surface"]) == ("console:local", "console"), pressed
    assert pressed["data"]["decision"] == "run", pressed["data"]
    checks = {code: passed for code, passed, _ in pressed["data"]["checks"]}
    assert {"kill_switch", "role", "confidence", "reversible", "approval"} <= set(checks)
    assert all(checks.values()), pressed["data"]["checks"]
    before, after = entries["playbook_step_started"], entries["playbook_step_finished"]
    assert before["data"]["params"] == {"scenario": "web-5xx-burst"}, before
    # the fix ended a scenario that was still running: no line of it is written any more
    assert after["data"]["ok"] is True, after
    assert after["data"]["output"] == "ended scenario web-5xx-burst; its log lines stopped"
    resolved = entries["auto_resolve"]
    assert resolved["actor"] == f"playbook:{PLAYBOOK}", resolved
    assert (resolved["before"], resolved["after"]) == ("open", "resolved"), resolved
    assert VERIFIED.fullmatch(resolved["reason"]), resolved
    verified = entries["playbook_verified"]
    assert verified["data"]["hits"] == 0, verified
    assert "rule web-5xx-burst no longer fires for this incident" in verified["detail"]
