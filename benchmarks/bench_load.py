"""Load: several simultaneous browser sessions on one page stay responsive.

Starts the app on a free local port with the demo data, then runs N real Chromium sessions at once
(one process each), each signing in as the commissioner and visiting PAGE and Home in turn, timing
every visit from the click until Streamlit has finished drawing. The baseline is one session alone,
measured in the same run. Prints the median and 95th percentile of each and their ratio.

    python benchmarks/bench_load.py [--sessions 4] [--visits 10] [--page Explore]

Needs Debian's chromium and the Python playwright package (both installed by CI).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry import db, demo  # noqa: E402
from registry.auth import SYSTEM  # noqa: E402
from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_FLAGS,
    free_port,
    settle,
    start_app,
)


def _visit(page: object, title: str) -> float:
    import re

    started = time.perf_counter()
    nav = page.locator('[data-testid="stSidebarNavLink"]')  # type: ignore[attr-defined]
    nav.filter(has_text=re.compile(f"{re.escape(title)}$")).click()
    settle(page)
    if page.locator('[data-testid="stException"]').count():  # type: ignore[attr-defined]
        raise RuntimeError(f"{title} showed an exception")
    return time.perf_counter() - started


def session(base: str, page_title: str, visits: int, queue: mp.Queue) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(base, wait_until="networkidle")
        page.get_by_label("Username", exact=True).fill("commissioner")
        page.get_by_label("Password", exact=True).fill("commissioner-demo-password")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Signed in as commissioner").wait_for(timeout=60_000)
        times = []
        for _ in range(visits):
            times.append(_visit(page, page_title))
            _visit(page, "Home")
        browser.close()
    queue.put(times)


def run(base: str, page_title: str, sessions: int, visits: int) -> list[float]:
    queue: mp.Queue = mp.Queue()
    workers = [
        mp.Process(target=session, args=(base, page_title, visits, queue)) for _ in range(sessions)
    ]
    for w in workers:
        w.start()
    results = [queue.get(timeout=900) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    return [t for times in results for t in times]


def describe(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--visits", type=int, default=10)
    parser.add_argument("--page", default="Explore")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit("Debian's chromium is not installed.")
    folder = Path(tempfile.mkdtemp(prefix="vru-load-"))
    url = f"sqlite:///{folder / 'load.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    with db.session_scope(engine) as s:
        demo.load(s, principal=SYSTEM)
        demo.add_demo_users(s, principal=SYSTEM)
    engine.dispose()
    port = free_port()
    app = start_app(url, port, folder / "streamlit.log")
    base = f"http://127.0.0.1:{port}"
    try:
        run(base, args.page, 1, 2)  # warm the server's caches
        alone = run(base, args.page, 1, args.visits)
        crowd = run(base, args.page, args.sessions, args.visits)
    finally:
        app.terminate()
        app.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    m1, p1 = describe(alone)
    mn, pn = describe(crowd)
    print(f"page: {args.page}; visits per session: {args.visits}")
    print(f"1 session:  median {m1 * 1000:.0f} ms, p95 {p1 * 1000:.0f} ms ({len(alone)} visits)")
    print(
        f"{args.sessions} sessions: median {mn * 1000:.0f} ms, p95 {pn * 1000:.0f} ms "
        f"({len(crowd)} visits)"
    )
    print(f"ratio (crowded / alone): median {mn / m1:.2f}x, p95 {pn / p1:.2f}x")


if __name__ == "__main__":
    main()
