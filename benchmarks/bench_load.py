"""Load: S simulated users through nginx, on 1 and on 2 app processes, on PostgreSQL.

Starts the deployment recipe (deploy/deploy.sh: N `vru serve` processes behind nginx) on a fresh
PostgreSQL database holding the demo data, then runs S simulated users at once. Each speaks
Streamlit's own protocol over its WebSocket (tests/streamlit_ws.py; no browser), signs in once
as a browser does (half as staff, half as commissioners: the password form, the one-time code
posted to ``/_vru/session`` for the session cookie, and a reconnect carrying it; that reconnect's
first run is timed as the sign-in; each user has an account of their own) and then, until the
time is up, repeatedly: changes an Explore filter, opens Overview, runs the Models page's trend
comparison, and (staff) saves a figure on Record deliveries, with a random think time
(exponential, mean 5 s) between steps. Users arrive spread over the first think time. Every
message's time to the script's finish is recorded.

Prints, for 1 and 2 processes, the median and 95th percentile, errors (exceptions, error boxes,
timeouts, dropped connections) and the 1-process/2-process ratio. ``--upload`` also saves a
100,000-row delivery upload (`vru import deliveries`, in its own process) during a 2-process run
and reports the errors and times while it runs. ``--chromium`` times the same page (Explore) in
one real Chromium session and with the protocol client, as a cross-check of what is measured.

    python benchmarks/bench_load.py                      # 1 and 2 processes, 50 users, 60 s
    python benchmarks/bench_load.py --users 50 --duration 60 --workers 2 --json
    python benchmarks/bench_load.py --workers 2 --upload --chromium

Needs nginx and a PostgreSQL server: VRU_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/postgres) names one where databases may be created.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from registry import auth, db, programmes  # noqa: E402
from registry.auth import SYSTEM  # noqa: E402
from registry.boroughs import BOROUGHS  # noqa: E402
from registry.periods import add_months, format_month  # noqa: E402
from registry.schema import Delivery, Programme  # noqa: E402

os.environ.setdefault("VRU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
from tests.conftest import create_pg_database, drop_pg_database  # noqa: E402
from tests.streamlit_ws import AppError, StreamlitSession  # noqa: E402
from tests.test_deploy import NGINX, SCRIPT, VRU, free_block  # noqa: E402

THINK_MEAN_SECONDS = 5.0
UPLOAD_ROWS = 100_000


@dataclass
class Tally:
    times: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)  # when each time was taken (monotonic)
    kinds: list[str] = field(default_factory=list)  # which step each time belongs to

    def add(self, seconds: float, kind: str = "") -> None:
        self.times.append(seconds)
        self.stamps.append(time.monotonic())
        self.kinds.append(kind)

    def of(self, kind: str) -> Tally:
        """Only the times of one kind of step."""
        picked = [i for i, k in enumerate(self.kinds) if k == kind]
        return Tally(
            [self.times[i] for i in picked],
            [],
            [self.stamps[i] for i in picked],
            [kind] * len(picked),
        )


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)] if ordered else float("nan")


class Cluster:
    """The recipe running N processes on a database, stopped on exit."""

    def __init__(self, url: str, workers: int) -> None:
        self.url, self.workers = url, workers
        self.run_dir = Path(tempfile.mkdtemp(prefix="vru-load-run-"))
        self.port = free_block(workers + 1)
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(
            os.environ,
            VRU_DATABASE_URL=url,
            VRU_RUN_DIR=str(self.run_dir),
            VRU=VRU,
            PYTHON=sys.executable,
            NGINX_BIN=NGINX,
        )

    def __enter__(self) -> Cluster:
        started = subprocess.run(
            [str(SCRIPT), "start", str(self.workers), str(self.port)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if started.returncode != 0:
            self.__exit__()
            raise SystemExit(f"the recipe did not start: {started.stderr or started.stdout}")
        return self

    def __exit__(self, *_: object) -> None:
        subprocess.run([str(SCRIPT), "stop"], env=self.env, capture_output=True, timeout=120)


async def simulated_user(
    i: int, base: str, plan: dict, deadline: float, tally: Tally, rng: random.Random
) -> None:
    staff = i % 2 == 1
    user = load_user(i)
    await asyncio.sleep(rng.uniform(0, THINK_MEAN_SECONDS))
    app = StreamlitSession(base, route=f"load-user-{i}", timeout=120)

    async def step(kind: str, page: str | None = None, **kwargs: object) -> None:
        run = await app.run(page=page, **kwargs)  # type: ignore[arg-type]
        tally.add(run.seconds, kind)
        for problem in run.errors():
            tally.errors.append(f"user {i}: {problem}")

    try:
        await app.connect()
        await step("sign-in")
        signed_in = await app.sign_in(user, plan["password"])
        tally.add(signed_in.seconds, "sign-in")
        actions = ["explore", "overview", "trend", *(["record"] if staff else [])]
        where = {
            "form_programme": plan["programmes"][i % len(plan["programmes"])],
            "form_borough": BOROUGHS[(i // len(plan["programmes"])) % len(BOROUGHS)].name,
            "form_month": plan["month"],
        }
        while time.monotonic() < deadline:
            action = rng.choice(actions)
            if action == "explore":
                await step(action, "Explore")
                choice = rng.choice(["freq", "figure", "measure", "start"])
                widget = app.widgets[choice]
                options = getattr(widget, widget.WhichOneof("type")).options
                await step(action, values={choice: rng.choice(list(options))})
            elif action == "overview":
                await step(action, "Overview")
            elif action == "trend":
                await step(action, "Models")
                await step(action, click="Compare")
            else:
                await step(action, "Record deliveries")
                await step(action, values=where, click="form_reload")
                # A figure a person could save: participants no more than opportunities (the
                # form refuses more, rightly; that refusal is not a failure of the server).
                figures = {}
                for key in app.widgets:
                    if key.startswith("form_opportunities_"):
                        figures[key] = rng.randint(100, 500)
                    elif key.startswith("form_participants_"):
                        figures[key] = rng.randint(0, 99)
                await step(action, values=figures, click="Save")
            await asyncio.sleep(min(rng.expovariate(1 / THINK_MEAN_SECONDS), 30))
    except (AppError, TimeoutError, OSError, KeyError) as exc:
        tally.errors.append(f"user {i}: {type(exc).__name__}: {exc}")
    except Exception as exc:  # a dropped WebSocket and the like: count it, keep the others going
        tally.errors.append(f"user {i}: {type(exc).__name__}: {exc}")
    finally:
        await app.close()


async def simulate(base: str, users: int, duration: float, plan: dict, seed: int) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + duration
    rng = random.Random(seed)
    await asyncio.gather(
        *(
            simulated_user(i, base, plan, deadline, tally, random.Random(rng.random()))
            for i in range(users)
        )
    )
    return tally


def load_user(i: int) -> str:
    return f"load-{'staff' if i % 2 == 1 else 'commissioner'}-{i}"


def prepare(users: int) -> tuple[str, str, dict]:
    """A database with the demo data and an account per simulated user: as many people signing
    in to one shared account at once would (rightly) lock it (registry/auth.py, lock-out)."""
    name = f"vru_bench_load_{uuid.uuid4().hex[:8]}"
    url = create_pg_database(name)
    env = dict(os.environ, VRU_DATABASE_URL=url)
    for args in (["db", "upgrade"], ["seed", "--with-demo-users"]):
        subprocess.run([VRU, *args], env=env, check=True, capture_output=True, timeout=600)
    engine = db.make_engine(url)
    password = f"load-{uuid.uuid4().hex}"
    with db.session_scope(engine) as s:
        for i in range(users):
            role = load_user(i).split("-")[1]
            auth.add_user(s, principal=SYSTEM, username=load_user(i), role=role, password=password)
        month = s.scalar(select(func.max(Delivery.month)))
        names = s.scalars(
            select(Programme.name)
            .join(Delivery, Delivery.programme_id == Programme.id)
            .where(Delivery.month == month)
            .distinct()
            .order_by(Programme.name)
        ).all()
    engine.dispose()
    plan = {"month": format_month(month), "programmes": list(names), "password": password}
    return name, url, plan


def upload_file(url: str, folder: Path) -> Path:
    """Programmes for, and a CSV of, 100,000 new delivery rows (as bench_delivery_import.py)."""
    months = [add_months(dt.date(2019, 1, 1), i) for i in range(72)]
    count = -(-UPLOAD_ROWS // (len(BOROUGHS) * len(months)))
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        programmes.add_funding_stream(s, principal=SYSTEM, name="Load Fund", funder="Load")
        for i in range(count):
            programmes.add_programme(
                s,
                principal=SYSTEM,
                name=f"Load upload {i:03d}",
                funding_stream="Load Fund",
                start=dt.date(2019, 1, 1),
            )
    engine.dispose()
    lines = ["programme,borough,month,opportunities"]
    for i in range(count):
        for m in months:
            for b in BOROUGHS:
                if len(lines) <= UPLOAD_ROWS:
                    lines.append(f"Load upload {i:03d},{b.name},{format_month(m)},{5 + i % 40}")
    path = folder / "upload.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def with_upload(
    cluster: Cluster, users: int, duration: float, plan: dict, path: Path
) -> tuple[Tally, float, float, str]:
    """The simulation, with the upload started a quarter of the way in; returns its window."""

    async def upload() -> tuple[float, float, str]:
        await asyncio.sleep(duration / 4)
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            VRU,
            "import",
            "deliveries",
            str(path),
            "--backfill",
            env=cluster.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        outcome = (out or err).decode().strip().splitlines()[-1:] or [""]
        return started, time.monotonic(), f"exit {process.returncode}: {outcome[0]}"

    tally, (start, end, outcome) = await asyncio.gather(
        simulate(cluster.base, users, duration, plan, seed=3), upload()
    )
    return tally, start, end, outcome


def chromium_check(base: str) -> tuple[float, float] | None:
    """Median seconds to open Explore in a real Chromium, and with the protocol client."""
    if not shutil.which("chromium"):
        return None
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS, settle

    browser_times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(base, wait_until="networkidle")
        page.get_by_label("Username", exact=True).fill("commissioner")
        page.get_by_label("Password", exact=True).fill("commissioner-demo-password")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Signed in as commissioner").wait_for(timeout=60_000)
        nav = page.locator('[data-testid="stSidebarNavLink"]')
        for _ in range(5):
            for title in ("Explore", "Home"):
                started = time.perf_counter()
                nav.filter(has_text=title).first.click()
                settle(page)
                if title == "Explore":
                    browser_times.append(time.perf_counter() - started)
        browser.close()

    async def protocol() -> list[float]:
        async with StreamlitSession(base, route="cross-check") as app:
            await app.run()
            await app.sign_in("commissioner", "commissioner-demo-password")
            times = []
            for _ in range(5):
                times.append((await app.run(page="Explore")).seconds)
                await app.run(page="Home")
            return times

    return statistics.median(browser_times), statistics.median(asyncio.run(protocol()))


STEPS = ["sign-in", "explore", "overview", "trend", "record"]


def summary(tally: Tally) -> dict:
    return {
        "median_ms": round(statistics.median(tally.times) * 1000) if tally.times else None,
        "p95_ms": round(p95(tally.times) * 1000) if tally.times else None,
        "messages": len(tally.times),
        "errors": len(tally.errors),
    }


def by_step(tally: Tally) -> dict[str, dict]:
    """Median and p95 of each kind of step, and of everything after signing in."""
    after = Tally(
        [t for t, k in zip(tally.times, tally.kinds, strict=True) if k != "sign-in"],
    )
    found = {kind: summary(tally.of(kind)) for kind in STEPS if kind in tally.kinds}
    return found | {"after sign-in": summary(after)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60, help="seconds of simulation")
    parser.add_argument("--workers", type=int, help="only this many processes (default 1 and 2)")
    parser.add_argument("--json", action="store_true", help="one JSON object (needs --workers)")
    parser.add_argument("--upload", action="store_true", help="also a run with a 100k upload")
    parser.add_argument("--chromium", action="store_true", help="cross-check with Chromium")
    args = parser.parse_args()
    if args.json and args.workers is None:
        parser.error("--json prints one object: give --workers N")
    if not Path(NGINX).exists():
        raise SystemExit("nginx is not installed (apt-get install nginx).")

    name, url, plan = prepare(args.users)
    results: dict[int, dict] = {}
    counts = [args.workers] if args.workers else [1, 2]
    try:
        for workers in counts:
            with Cluster(url, workers) as cluster:
                tally = asyncio.run(simulate(cluster.base, args.users, args.duration, plan, 1))
                results[workers] = summary(tally) | {
                    "error_samples": tally.errors[:3],
                    "steps": by_step(tally),
                }
                if not args.json:
                    print(f"{workers} process(es): {results[workers]}", file=sys.stderr, flush=True)
                if args.chromium and workers == counts[-1]:
                    results[workers]["chromium_check"] = chromium_check(cluster.base)
                if args.upload and workers == counts[-1]:
                    folder = Path(tempfile.mkdtemp(prefix="vru-load-upload-"))
                    path = upload_file(url, folder)
                    tally, start, end, outcome = asyncio.run(
                        with_upload(cluster, args.users, args.duration, plan, path)
                    )
                    during = Tally(
                        [
                            t
                            for t, s in zip(tally.times, tally.stamps, strict=True)
                            if start <= s <= end
                        ]
                    )
                    results[workers]["upload"] = summary(tally) | {
                        "upload_seconds": round(end - start, 1),
                        "upload_outcome": outcome,
                        "during_upload": summary(during) | {"errors": len(tally.errors)},
                        "error_samples": tally.errors[:3],
                    }
    finally:
        drop_pg_database(name)

    if args.json:
        only = results[args.workers]
        print(
            json.dumps(
                {"users": args.users, "workers": args.workers}
                | {k: only[k] for k in ("median_ms", "p95_ms", "errors")}
            )
        )
        return
    print(f"{args.users} users, {args.duration:.0f} s, think time mean {THINK_MEAN_SECONDS:.0f} s")
    for workers, r in results.items():
        print(
            f"{workers} process(es): median {r['median_ms']} ms, p95 {r['p95_ms']} ms, "
            f"{r['messages']} messages, {r['errors']} errors {r['error_samples'] or ''}"
        )
        for kind, figures in r["steps"].items():
            print(
                f"  {kind:14s} median {figures['median_ms']} ms, p95 {figures['p95_ms']} ms "
                f"({figures['messages']} messages)"
            )
        if "upload" in r:
            u = r["upload"]
            d = u["during_upload"]
            print(
                f"  with a 100,000-row upload ({u['upload_outcome']}, {u['upload_seconds']} s): "
                f"median {u['median_ms']} ms, p95 {u['p95_ms']} ms, {u['errors']} errors; "
                f"while it ran: median {d['median_ms']} ms, p95 {d['p95_ms']} ms "
                f"({d['messages']} messages) {u['error_samples'] or ''}"
            )
        if r.get("chromium_check"):
            browser, protocol = r["chromium_check"]
            print(
                f"  cross-check, Explore opened alone: Chromium {browser * 1000:.0f} ms, "
                f"protocol client {protocol * 1000:.0f} ms"
            )
    if 1 in results and 2 in results:
        one, two = results[1], results[2]
        print(
            f"ratio 1 process / 2 processes: median {one['median_ms'] / two['median_ms']:.2f}x, "
            f"p95 {one['p95_ms'] / two['p95_ms']:.2f}x"
        )


if __name__ == "__main__":
    main()
