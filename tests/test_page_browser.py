"""The page in a real headless Chromium (Debian's, driven by Playwright): a user logs in at the
Hub's own login page, sees when their idle server will be stopped, keeps it alive, and the next
pass keeps it while another user's idle server is stopped; then an admin opens the operators'
view. The screenshots in docs/ are made here: the suite writes them to a temporary directory;
`CULL_IDLE_SCREENSHOTS=docs python -m pytest tests/test_page_browser.py` refreshes docs/."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from pagehub import TIMEOUT, eventually, page_url

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where the screenshots go: a temporary directory, unless CULL_IDLE_SCREENSHOTS names one."""
    chosen = os.environ.get("CULL_IDLE_SCREENSHOTS")
    return ROOT / chosen if chosen else tmp_path_factory.mktemp("screenshots")


def log_in(hub, context, name: str):
    """Open the page; the Hub's login form appears; log in; the page comes back."""
    page = context.new_page()
    page.goto(page_url(hub))
    assert "/hub/login" in page.url, page.url
    page.fill("#username_input", name)
    page.fill("#password_input", "any password")
    page.click("#login_submit")
    page.wait_for_url(page_url(hub))
    return page


def shows(page, text: str, where: str = "main") -> bool:
    """Reload, then look: the page is made from the last pass, so a new pass needs a reload."""
    page.reload()
    return text in page.inner_text(where)


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_a_user_keeps_their_server_alive_and_an_admin_sees_it(page_hub, browser, shots):
    hub = page_hub
    student, other = fresh("student"), fresh("other")
    hub.create_users([student, other])
    pair = (student, other)
    for name in pair:
        hub.start_server(name)
    # Idle for 50 minutes of the 60: to be stopped in about 10.
    hub.set_times([{"user": u, "server": "", "last_activity_ago": 3000, "started_ago": 3000} for u in pair])
    context = browser.new_context(timezone_id="America/New_York", viewport={"width": 1000, "height": 800})
    page = log_in(hub, context, student)
    eventually(lambda: shows(page, "Will be stopped"), "the pass to show the server")
    verdict = page.inner_text(".verdict")
    assert "Will be stopped in" in verdict and "minutes" in verdict, verdict
    # The script shows times in the browser's zone, not UTC.
    assert "UTC" not in page.inner_text("time .abs")
    assert other not in page.content()

    page.select_option("select[name=seconds]", str(float(2 * 3600)).rstrip("0").rstrip("."))
    page.click("button[value=keep]")
    assert "Your server is kept alive." in page.inner_text(".notice")
    eventually(lambda: shows(page, "Kept alive"), "the pass to show the keep-alive")
    page.screenshot(path=str(shots / "page-user.png"), full_page=True)

    # Both servers idle past the limit: the next pass stops the other one and keeps this one.
    long_ago = TIMEOUT + 600
    hub.set_times(
        [{"user": u, "server": "", "last_activity_ago": long_ago, "started_ago": long_ago} for u in pair]
    )
    hub.wait_for(lambda: not hub.running(other), "the culler to stop the other user's idle server")
    eventually(
        lambda: shows(page, "you are keeping it alive", ".verdict"),
        "the page to say the server is kept alive",
    )
    assert hub.running(student)

    # On a phone: nothing wider than the screen.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    small = log_in(hub, phone, student)
    assert small.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.close()

    admin_context = browser.new_context(timezone_id="Europe/Berlin", viewport={"width": 1200, "height": 900})
    admin = log_in(hub, admin_context, "admin-user")
    admin.click("text=Operators' view")
    admin.wait_for_url(page_url(hub, "admin"))
    text = admin.inner_text("main")
    assert student in text and "Last passes" in text
    # The Hub is shared with the page's other tests: their keep-alives may be listed too.
    assert student in admin.inner_text("#kept + .scroll")
    assert "kept-alive" in admin.inner_text("#servers + .scroll")
    # The other user's cull is listed: who, when, why, by which pass; and in the JSON.
    [row] = [r for r in admin.locator("#culls + .scroll tbody tr").all_inner_texts() if other in r]
    assert "idle" in row and "stopped" in row, row
    culls = admin.request.get(page_url(hub, "api/admin")).json()["culls"]
    assert [(c["reason"], c["server"]) for c in culls if c["user"] == other] == [("idle", "")], culls
    # Every column of the passes fits at this width, Errors included; and passes a second
    # apart read their own times, not all "now".
    fits = "(s) => s.scrollWidth <= s.clientWidth"
    assert admin.locator("#passes + .scroll").evaluate(fits)
    started = admin.locator("#passes + .scroll tbody tr td:first-child .rel").all_inner_texts()
    assert len(started) > 5 and started.count("now") <= 2, started
    admin.screenshot(path=str(shots / "page-admin.png"), full_page=True)
    admin_context.close()
    context.close()


def test_the_page_works_without_scripts(page_hub, browser):
    name = fresh("nojs")
    page_hub.create_users([name])
    page_hub.start_server(name)
    page_hub.set_times([{"user": name, "server": "", "last_activity_ago": 3000, "started_ago": 3000}])
    context = browser.new_context(java_script_enabled=False)
    page = log_in(page_hub, context, name)
    eventually(lambda: shows(page, "Will be stopped"), "the pass to show the server")
    assert "UTC" in page.inner_text("time .abs")
    page.click("button[value=keep]")
    assert "Your server is kept alive." in page.inner_text(".notice")
    context.close()
