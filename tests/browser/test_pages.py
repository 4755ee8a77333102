"""Sign in as each role in a real browser and visit every page that role has."""

from __future__ import annotations

import re

import pytest

from registry.demo import DEMO_USERS
from tests.browser.conftest import settle

# Slow lane: a real browser; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

# Page title in the navigation -> text that must be visible on it (a key figure or heading).
HOME = "Positive opportunities delivered to date"
ENTRY = {
    "Record deliveries": "Record deliveries",
    "Programmes": "Programmes",
    "Returns and sign-off": "Returns and sign-off",
}
DASHBOARD = {
    "Overview": "Opportunities delivered",
    "Explore": "Borough comparison",
    "Models": "Poisson model with borough and month effects",
}
PAGES_BY_ROLE = {
    "admin": {
        "Home": HOME,
        **DASHBOARD,
        "Downloads": "Opportunities",
        **ENTRY,
        "Users": "Users",
        "Audit trail": "Audit trail",
        "Outcome data": "Outcome data",
    },
    "staff": {"Home": HOME, **DASHBOARD, "Downloads": "Opportunities", **ENTRY},
    "commissioner": {
        "Home": HOME,
        **DASHBOARD,
        "Downloads": "Opportunities",
        "Programmes": "Programmes",
        "Returns and sign-off": "Returns and sign-off",
    },
    "funder": {"Home": "Downloads page", "Downloads": "Opportunities"},
}
PASSWORDS = {username: password for username, _r, _f, password in DEMO_USERS}


def sign_in(page, base: str, username: str) -> None:
    page.goto(base, wait_until="networkidle")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORDS[username])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {username}").wait_for(timeout=30_000)


@pytest.mark.parametrize("role", sorted(PAGES_BY_ROLE))
def test_every_page_for_each_role(role, live_app, browser, artifacts) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    sign_in(page, live_app, role)
    nav = page.locator('[data-testid="stSidebarNavLink"]')
    titles = sorted(text.split("\n")[-1] for text in nav.all_inner_texts())  # after the icon
    assert titles == sorted(PAGES_BY_ROLE[role]), titles
    for title, must_see in PAGES_BY_ROLE[role].items():
        nav.filter(has_text=re.compile(f"{re.escape(title)}$")).click()
        settle(page)
        page.get_by_text(must_see).first.wait_for(timeout=60_000)
        page.wait_for_timeout(700)  # let widgets finish drawing before the screenshot
        assert page.locator('[data-testid="stException"]').count() == 0, (role, title)
        assert page.get_by_text("Synthetic demo data").count() >= 1
        page.screenshot(
            path=str(artifacts / f"{role}-{title.lower().replace(' ', '-')}.png"), full_page=True
        )
    context.close()


def test_signed_out_visitor_sees_only_sign_in(live_app, browser, artifacts) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_app, wait_until="networkidle")
    page.get_by_text("Sign in to the VRU registry").wait_for()
    assert page.locator('[data-testid="stSidebarNavLink"]').count() == 0
    assert page.get_by_text("Positive opportunities").count() == 0
    page.get_by_label("Username", exact=True).fill("admin")
    page.get_by_label("Password", exact=True).fill("wrong-password!")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Wrong username or password").wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / "sign-in-refused.png"))
    context.close()
