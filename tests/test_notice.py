"""The notice in JupyterLab (cull-idle-sensor's prebuilt extension), end to end: a real Hub
behind the real proxy, the culler as a managed service with its page, real JupyterLab servers
with the sensor, and people's tabs in headless Chromium.

Servers are made idle in the Hub's eyes with the test endpoint (the Hub copies the proxy's
activity only when asked, ``last_activity_interval`` being an hour here), so the culler warns
them at its next pass. The sensor asks the culler every ``INTERVAL`` seconds here, where it
would every 300 s in a deployment. Every wait is for what the tab shows, what the culler
answers, or what the Hub reports.

The screenshots in docs/ are made here, into a temporary directory unless
``CULL_IDLE_SCREENSHOTS`` names one (``CULL_IDLE_SCREENSHOTS=docs``)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pagehub
import pytest
import requests
from labdriver import Lab
from oldest_lab import OLDEST_JUPYTERLAB
from pagehub import eventually, me, page_url, server_token

from helpers import sample

pytestmark = pytest.mark.timeout(420)

ROOT = Path(__file__).resolve().parents[1]
# A fresh server is far from its limit, so only the servers a test makes idle are warned.
LIMIT = 600  # --timeout
WINDOW = 30  # --warn-before
INTERVAL = 2  # seconds between the sensor's questions to the culler
DUE = LIMIT - WINDOW + 2  # idle this long: inside the warning window, so warned at the next pass


def culler_args(*extra: str) -> tuple[str, ...]:
    # The token check is not cached, so that every question a sensor asks reaches the Hub.
    return (f"--timeout={LIMIT}", f"--warn-before={WINDOW}", "--page-auth-cache=0", *extra)


@pytest.fixture(scope="module")
def notice_hub(tmp_path_factory, oldest_lab):
    lab_env = {"TEST_NOTICE_INTERVAL": str(INTERVAL), "TEST_OLDEST_LAB_PYTHON": str(oldest_lab)}
    hub = pagehub.start(tmp_path_factory.mktemp("notice"), *culler_args(), lab_env=lab_env)
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    chosen = os.environ.get("CULL_IDLE_SCREENSHOTS")
    return ROOT / chosen if chosen else tmp_path_factory.mktemp("screenshots")


def metric(hub: Any, name: str) -> float:
    value = sample(requests.get(page_url(hub, "metrics"), timeout=30).text, name)
    assert value is not None, f"{name} not in the culler's metrics"
    return value


def contrast(element: Any) -> float:
    """The contrast ratio of an element's text on its background (WCAG 2)."""
    ratio: float = element.evaluate(
        """(node) => {
            const style = getComputedStyle(node);
            const luminance = (css) => {
                const [r, g, b] = css.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => {
                    v /= 255;
                    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
                });
                return 0.2126 * r + 0.7152 * g + 0.0722 * b;
            };
            const [a, b] = [luminance(style.color), luminance(style.backgroundColor)].sort((x, y) => y - x);
            return (a + 0.05) / (b + 0.05);
        }"""
    )
    return ratio


def make_due(hub: Any, *users: str) -> None:
    hub.set_times([{"user": u, "server": "", "last_activity_ago": DUE, "started_ago": DUE} for u in users])


def keep_alive(hub: Any, user: str) -> None:
    """Keep ``user``'s server from the culler for the test, as its owner can."""
    r = requests.post(
        page_url(hub, "api/keep-alive"),
        json={"server": "", "seconds": 3600},
        headers=pagehub.with_token(server_token(hub, user)),
        timeout=30,
    )
    assert r.status_code == 200, r.text


def toast(lab: Lab, text: str, timeout: float = 30) -> Any:
    """The notification that says ``text``, once it is shown."""
    found = lab.page.locator(".jp-toast-message", has_text=text).first
    found.wait_for(state="visible", timeout=timeout * 1000)
    return found


def closed(lab: Lab, text: str) -> None:
    """Until no notification says ``text`` (a closed one slides out first)."""
    lab.page.locator(".jp-toast-message", has_text=text).first.wait_for(state="detached", timeout=10_000)


def test_a_warned_server_shows_the_notice_and_its_button_keeps_it_while_another_is_culled(
    notice_hub, browser, shots
):
    # The servers start together, and the pages load together.
    people = ["nt-keeper", "nt-goner", "nb-reader", "old-keeper"]
    notice_hub.create_users(people)
    notice_hub.start_servers([(name, "") for name in people], timeout=180)
    keeper = Lab(notice_hub, browser, "nt-keeper", wait=False)
    goner = Lab(notice_hub, browser, "nt-goner", wait=False)
    # Notebook 7 (as real images run it: nb-* users have their extensions), which has no
    # status bar: the countdown is in its top bar.
    reader = Lab(notice_hub, browser, "nb-reader", app="notebooks/reading.ipynb", wait=False)
    # The oldest JupyterLab the notice supports (the others run the newest).
    old = Lab(notice_hub, browser, "old-keeper", wait=False)
    try:
        for lab in (keeper, goner, reader, old):
            lab.ready()
        assert old.page.evaluate("() => window.jupyterapp.version") == OLDEST_JUPYTERLAB
        make_due(notice_hub, "nt-keeper", "nt-goner", "nb-reader", "old-keeper")
        # The warning reaches the tabs at their servers' next question to the culler (the
        # wait's 30 s is only the test's patience).
        toast(keeper, "will be stopped at")
        toast(goner, "will be stopped at")
        toast(reader, "will be stopped at")
        toast(old, "will be stopped at")
        shown = old.page.locator(".cull-idle-countdown").inner_text()
        assert re.fullmatch(r"Stops in (\d+ min|under a minute)", shown), shown
        old.page.get_by_role("button", name="Keep running 1 h").first.click()
        toast(old, "Kept running until")
        [server] = me(notice_hub, server_token(notice_hub, "old-keeper"))["servers"]
        assert server["kept_until"], server
        top = reader.page.locator("#top-panel .cull-idle-countdown")
        top.wait_for(state="visible", timeout=10_000)
        assert re.fullmatch(r"Stops in (\d+ min|under a minute)", top.inner_text()), top.inner_text()
        reader.page.screenshot(path=str(shots / "notice-notebook.png"))
        countdown = keeper.page.locator(".cull-idle-countdown")
        shown = countdown.inner_text()
        assert re.fullmatch(r"Stops in (\d+ min|under a minute)", shown), shown
        # JupyterLab's own first-visit question about news is answered, so the shot shows ours.
        news = keeper.page.locator(".jp-toast-message", has_text="official Jupyter news")
        if news.count():
            keeper.page.get_by_role("button", name="No", exact=True).click()
            news.wait_for(state="detached")
        keeper.page.screenshot(path=str(shots / "notice.png"))
        keeper.page.locator("#jp-main-statusbar").screenshot(path=str(shots / "notice-status-bar.png"))

        # Readable in both of JupyterLab's themes: WCAG's 4.5:1 for the countdown's text.
        assert contrast(countdown) >= 4.5
        dark = "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
        keeper.page.evaluate(dark)
        keeper.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
        assert contrast(countdown) >= 4.5
        keeper.page.locator("#jp-main-statusbar").screenshot(path=str(shots / "notice-status-bar-dark.png"))

        # Keyboard: the notice's button takes the focus, and Enter presses it. The click's
        # answer is held back until the tab's routine question has been answered after it, seen
        # the keep-alive and closed the notice that was clicked: the click still answers.
        held: list[Any] = []
        # (JupyterLab's requests carry a query against caches.)
        answers = re.compile(r".*/api/cull-idle/notice(\?.*)?$")

        def hold(route: Any) -> None:
            if route.request.method == "POST":
                held.append((route, route.fetch()))
            else:
                route.fallback()

        keeper.page.route(answers, hold)
        button = keeper.page.get_by_role("button", name="Keep running 1 h").first
        button.focus()
        keeper.page.keyboard.press("Enter")
        # Playwright runs the handler (its fetch, the culler's answer) while this thread waits.
        deadline = time.monotonic() + 30
        while not held and time.monotonic() < deadline:
            keeper.page.wait_for_timeout(100)
        countdown.wait_for(state="hidden", timeout=30_000)
        closed(keeper, "will be stopped at")
        [(route, response)] = held
        route.fulfill(response=response)
        keeper.page.unroute(answers, hold)
        kept = toast(keeper, "Kept running until")
        # In the colours of an answer, not of the warning it answers.
        bar = kept.locator("xpath=ancestor::div[contains(@class, 'Toastify__toast--')][1]")
        assert "Toastify__toast--success" in (bar.get_attribute("class") or ""), bar.get_attribute("class")
        token = server_token(notice_hub, "nt-keeper")
        [server] = me(notice_hub, token)["servers"]
        assert server["kept_until"], server
        assert countdown.is_hidden()

        # The last notice comes shortly before the stop, in place of the warning: one notice,
        # one row of buttons. Then the culler stops that server.
        toast(goner, "Save your work now", timeout=WINDOW + 10)
        closed(goner, "will be stopped at")
        assert goner.page.get_by_role("button", name="Keep running 1 h").count() == 1
        gone = lambda: not notice_hub.running("nt-goner")  # noqa: E731
        notice_hub.wait_for(gone, "nt-goner culled", timeout=WINDOW + 30)
        passes = metric(notice_hub, "cull_idle_passes_total")
        eventually(lambda: metric(notice_hub, "cull_idle_passes_total") >= passes + 2, "two more passes")
        assert notice_hub.running("nt-keeper")
        [server] = me(notice_hub, token)["servers"]
        assert (server["verdict"], server["reason"]) == ("keep", "kept-alive"), server
    finally:
        for lab in (keeper, goner, reader, old):
            lab.close()


def hide(lab: Lab) -> None:
    """What a browser does when its tab goes to the background."""
    lab.page.evaluate(
        """() => {
            Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
            Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
            document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )


def is_question(request: Any) -> bool:
    return "api/cull-idle/notice" in request.url


def next_question(lab: Lab) -> None:
    """Until ``lab``'s tab asks its server for the notice again. Playwright hands out the
    other tabs' events meanwhile."""
    with lab.page.expect_request(is_question, timeout=30_000):
        pass


def test_a_hidden_tab_asks_nothing_that_moves_the_hubs_last_activity(notice_hub, browser):
    hidden = Lab(notice_hub, browser, "nt-hidden")
    watcher = Lab(notice_hub, browser, "nt-watcher")
    keep_alive(notice_hub, "nt-watcher")
    asked_hidden: list[str] = []
    try:
        make_due(notice_hub, "nt-hidden")
        toast(hidden, "will be stopped at")
        hide(hidden)
        # From here the browser drops every request of this tab but the notice's: JupyterLab's
        # pollers may each finish the round under way (every 10 to 61 s), and
        # jupyter-resource-usage polls hidden tabs every 5 s. What reaches the proxy is the
        # notice's alone.
        others = re.compile(r".*/user/nt-hidden/(?!api/cull-idle/notice).*")
        hidden.page.route(others, lambda route: route.abort())
        # The question under way when the tab hid has ended by the watcher's next one.
        next_question(watcher)
        hidden.page.on("request", lambda r: asked_hidden.append(r.url) if is_question(r) else None)
        before = hidden.hub_idle_for()
        # Five of the visible tab's questions: the hidden one would have asked as often.
        for _ in range(5):
            next_question(watcher)
        assert asked_hidden == []
        after = hidden.hub_idle_for()
        assert after >= before, (before, after)
        # Shown again, it asks at once.
        with hidden.page.expect_request(is_question, timeout=10_000):
            hidden.page.evaluate(
                """() => {
                    delete document.hidden;
                    delete document.visibilityState;
                    document.dispatchEvent(new Event('visibilitychange'));
                }"""
            )
    finally:
        hidden.close()
        watcher.close()


TABS = 6


def test_many_tabs_cost_the_hub_one_check_per_server(notice_hub, browser):
    # Six tabs, not more: the count does not depend on how many there are (that is the point),
    # and each costs this 2-core suite about 4 s to load.
    first = Lab(notice_hub, browser, "nt-many")
    keep_alive(notice_hub, "nt-many")
    tabs = [first.page]
    asked: list[str] = []
    try:
        for i in range(TABS - 1):
            tab = first.context.new_page()
            # A workspace each: JupyterLab moves a second tab off a workspace in use by itself.
            tab.goto(f"{first.base}lab/workspaces/tab-{i}")
            tab.wait_for_function("() => window.jupyterapp !== undefined", timeout=90_000)
            tabs.append(tab)
        for tab in tabs:
            tab.on("request", lambda r: asked.append(r.url) if is_question(r) else None)
        checks = metric(notice_hub, "cull_idle_page_auth_checks_total")
        while len(asked) < TABS * 5:
            next_question(first)
        spent = metric(notice_hub, "cull_idle_page_auth_checks_total") - checks
        # Each tab asked about once per INTERVAL, so the questions took about 5 intervals; the
        # sensor asked the culler once per interval, and the culler checked the server's token
        # with the Hub once for the server's life, before this count began (once more at most,
        # if a pass began between that check and the server's first listing).
        print(f"{TABS} tabs: {len(asked)} questions, {spent:.0f} Hub checks")
        assert spent <= 1, (spent, len(asked))
    finally:
        first.close()


def test_without_the_page_the_notice_shows_without_buttons(browser, tmp_path):
    hub = pagehub.start(
        tmp_path, *culler_args("--page=false"), lab_env={"TEST_NOTICE_INTERVAL": str(INTERVAL)}
    )
    try:
        lab = Lab(hub, browser, "nt-nopage")
        make_due(hub, "nt-nopage")
        notice = toast(lab, "will be stopped at")
        assert "Save your work." in notice.inner_text()
        assert lab.page.get_by_role("button", name=re.compile("Keep running")).count() == 0
        # No page, no login, no keep-alives: only api/me, for the servers' tokens.
        for path in ["admin", "api/admin", "oauth_callback"]:
            assert requests.get(page_url(hub, path), timeout=30).status_code == 404, path
        lab.close()
    finally:
        hub.stop()
