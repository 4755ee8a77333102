"""A real app and a real browser: Streamlit served on a free local port, Debian's Chromium driven
by Playwright. Skipped where Chromium or Playwright is missing (CI installs both)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import db, demo
from registry.auth import SYSTEM

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


_STATE = (
    "document.querySelector('[data-test-script-state]')?.getAttribute('data-test-script-state')"
)


def settle(page: Any, started_run: bool = True) -> None:
    """Wait until Streamlit has run the page's script to the end.

    The app element's ``data-test-script-state`` goes to ``running`` when the server starts the
    script and back to ``notRunning`` when it has finished; after a click, first wait (briefly)
    for the run to start, so a page that has not begun is not taken as finished.
    """
    if started_run:
        # The run may already have finished (or never needed to start): then this times out.
        with contextlib.suppress(playwright_api.TimeoutError):
            page.wait_for_function(f"() => {_STATE} !== 'notRunning'", timeout=3_000)
    page.wait_for_function(f"() => {_STATE} === 'notRunning'", timeout=120_000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_app(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, VRU_DATABASE_URL=url)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "vru_server.py"),  # the app plus its session-cookie routes
        f"--server.port={port}",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
        "--server.fileWatcherType=none",
    ]
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return process
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"The app did not start: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def live_app(
    seeded_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The app serving a copy of the demo data, with one demo account per role."""
    folder = tmp_path_factory.mktemp("live")
    path = folder / "live.db"
    shutil.copyfile(seeded_sqlite_template, path)
    url = f"sqlite:///{path}"
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        demo.add_demo_users(s, principal=SYSTEM)
    engine.dispose()
    port = free_port()
    process = start_app(url, port, folder / "streamlit.log")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
