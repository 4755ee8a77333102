"""Explore's London map in a real browser: a click on a tile opens that borough's detail."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import playwright_api, settle
from tests.browser.test_pages import sign_in

# Slow lane: a real browser; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow


def test_clicking_a_tile_shows_that_borough(live_app, browser, artifacts) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    sign_in(page, live_app, "commissioner")
    nav = page.locator('[data-testid="stSidebarNavLink"]')
    nav.filter(has_text=re.compile("Explore$")).click()
    settle(page)
    # Trend, funnel, map: the map is the third chart until a borough's detail is shown.
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    playwright_api.expect(charts).to_have_count(3, timeout=60_000)
    # Vega draws each tile as an SVG path labelled with its tooltip's fields. Click where a
    # person would, in the middle, on the tile's name and figure.
    tile = charts.nth(2).locator('path[aria-label*="borough: Lambeth;"]')
    tile.scroll_into_view_if_needed()
    where = tile.bounding_box()
    assert where is not None
    page.mouse.click(where["x"] + where["width"] / 2, where["y"] + where["height"] / 2)
    settle(page)
    page.get_by_text("Lambeth: opportunities delivered").wait_for(timeout=60_000)
    assert "detail=E09000022" in page.url
    box = page.get_by_role("combobox", name="Borough (or click one on the map)")
    playwright_api.expect(box).to_have_value("Lambeth")
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(artifacts / "explore-map-click.png"), full_page=True)
    context.close()
