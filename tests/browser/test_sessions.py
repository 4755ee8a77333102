"""Signing in that lasts, in a real browser: refresh, new tab, sign-out everywhere, a shared
link, and a cookie that scripts cannot read and another browser cannot use."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import settle
from tests.browser.test_pages import PASSWORDS, sign_in

SIGN_IN = "Sign in to the VRU registry"
LINK = "/explore?borough=E09000012&freq=quarter"

pytestmark = pytest.mark.slow  # a real browser: several seconds a test


def _nav_to(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNavLink"]').filter(
        has_text=re.compile(f"{title}$")
    ).click()
    settle(page)


def test_refresh_and_a_new_tab_stay_signed_in(live_app, browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, live_app, "staff")
    cookie = next(c for c in context.cookies() if c["name"] == "vru_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert "vru_session" not in page.evaluate("document.cookie")  # no script can read it
    page.reload(wait_until="networkidle")
    page.get_by_text("Signed in as staff").wait_for(timeout=30_000)
    tab = context.new_page()
    tab.goto(live_app, wait_until="networkidle")
    tab.get_by_text("Signed in as staff").wait_for(timeout=30_000)
    assert tab.get_by_text(SIGN_IN).count() == 0
    context.close()


def test_sign_out_ends_the_session_in_every_tab(live_app, browser) -> None:
    context = browser.new_context()
    first = context.new_page()
    sign_in(first, live_app, "commissioner")
    second = context.new_page()
    second.goto(live_app, wait_until="networkidle")
    second.get_by_text("Signed in as commissioner").wait_for(timeout=30_000)
    first.get_by_role("button", name="Sign out", exact=True).click()
    first.get_by_text(SIGN_IN).wait_for(timeout=30_000)
    assert not any(c["name"] == "vru_session" for c in context.cookies())
    _nav_to(second, "Programmes")  # the other tab's next action
    second.get_by_text(SIGN_IN).wait_for(timeout=30_000)
    second.get_by_text("Your session has ended (signed out)").wait_for()
    context.close()


def test_sign_out_everywhere_ends_other_browsers(live_app, browser) -> None:
    here, there = browser.new_context(), browser.new_context()
    mine, theirs = here.new_page(), there.new_page()
    sign_in(mine, live_app, "admin")
    sign_in(theirs, live_app, "admin")
    mine.get_by_role("button", name="Sign out everywhere").click()
    mine.get_by_text(SIGN_IN).wait_for(timeout=30_000)
    _nav_to(theirs, "Programmes")
    theirs.get_by_text(SIGN_IN).wait_for(timeout=30_000)
    here.close()
    there.close()


def test_a_shared_link_opens_its_view_after_sign_in(live_app, browser, artifacts) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(live_app + LINK, wait_until="networkidle")
    page.get_by_text(SIGN_IN).wait_for(timeout=30_000)
    assert page.get_by_text("Page not found").count() == 0
    page.get_by_label("Username", exact=True).fill("commissioner")
    page.get_by_label("Password", exact=True).fill(PASSWORDS["commissioner"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as commissioner").wait_for(timeout=30_000)
    settle(page)
    page.get_by_text("Borough comparison").first.wait_for(timeout=60_000)
    assert "/explore?" in page.url
    assert "borough=E09000012" in page.url and "freq=quarter" in page.url
    boroughs = page.get_by_test_id("stMultiSelect").filter(has_text="Boroughs")
    assert "Hackney" in boroughs.inner_text()
    page.screenshot(path=str(artifacts / "shared-link-after-sign-in.png"), full_page=True)
    context.close()


def test_a_copied_cookie_does_not_work_in_another_browser(live_app, browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, live_app, "funder")
    other = browser.new_context(user_agent="Another browser/1.0")
    other.add_cookies([c for c in context.cookies() if c["name"] == "vru_session"])
    stolen = other.new_page()
    stolen.goto(live_app, wait_until="networkidle")
    stolen.get_by_text("belongs to another browser").wait_for(timeout=30_000)
    assert stolen.get_by_text("Signed in as funder").count() == 0
    context.close()
    other.close()
