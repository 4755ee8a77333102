"""A real browser through the deployment recipe (nginx in front of two app processes): the
sign-in form's post carries the page's Origin with its port, which the proxy must pass on."""

from __future__ import annotations

from tests.browser.test_pages import sign_in
from tests.test_deploy import Recipe, pytestmark, recipe  # noqa: F401 (the fixture, its skips)


def test_a_browser_signs_in_through_the_proxy(recipe: Recipe, browser) -> None:  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, recipe.base, "commissioner")  # waits for "Signed in as commissioner"
    assert {c["name"] for c in context.cookies()} >= {"vru_route", "vru_session"}
    page.reload(wait_until="networkidle")
    page.get_by_text("Signed in as commissioner").wait_for(timeout=30_000)
    context.close()
