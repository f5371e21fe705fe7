"""The web console in Chromium against a real ``run_bot.py`` process: an incident arrives live,
is acknowledged and suppressed from its card, and its page shows evidence, root cause and
timeline.

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
    page.screenshot(path=str(tmp_path / "incident-page.png"), full_page=True)


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
