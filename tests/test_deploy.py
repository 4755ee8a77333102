"""The deployment recipe works: `deploy/deploy.sh` (what `make deploy-local` runs) starts two app
processes and nginx on PostgreSQL, sharing one session secret; a browser session signs in through
the proxy, its session cookie is honoured by the other process too, a delivery saved through one
process is read through the other, and when a process is killed the browser carries on with the
other one, still signed in, nothing saved lost.

Sessions speak Streamlit's own protocol (tests/streamlit_ws.py). Needs nginx (CI installs it) and
``VRU_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import PG_URL, WORKER, create_pg_database, drop_pg_database
from tests.streamlit_ws import StreamlitSession

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "deploy.sh"
VRU = str(Path(sys.executable).parent / "vru")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not PG_URL, reason="the recipe serves PostgreSQL: set VRU_TEST_POSTGRES_URL"
    ),
    pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (CI installs it)"),
]


def free_block(size: int) -> int:
    """A port P with P..P+size-1 all free."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = sock.getsockname()[1]
        if base + size > 65535:
            continue
        try:
            for port in range(base, base + size):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free block of ports")


class Recipe:
    def __init__(self, url: str, run_dir: Path, port: int) -> None:
        self.url, self.run_dir, self.port = url, run_dir, port
        self.base = f"http://127.0.0.1:{port}"
        self.env = dict(
            os.environ,
            VRU_DATABASE_URL=url,
            VRU_RUN_DIR=str(run_dir),
            VRU=VRU,
            PYTHON=sys.executable,
            NGINX_BIN=NGINX,
        )
        self.env.pop("VRU_SESSION_SECRET", None)  # the recipe makes one for its processes

    def script(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=300
        )

    def upstream_of(self, route: str) -> str:
        """The app process (host:port) that answered the browser with this route cookie."""
        request = urllib.request.Request(self.base + "/", headers={"Cookie": f"vru_route={route}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert f"vru_route={route}" in response.headers["Set-Cookie"]
        # "a:1, b:2" when nginx tried a first and passed the request on to b. nginx may log the
        # request a moment after the answer has reached the client: look again for up to 5 s.
        pattern = re.compile(rf"upstream=(.+?) ut=.*route={re.escape(route)}$", re.MULTILINE)
        for _ in range(50):
            log = (self.run_dir / "nginx-access.log").read_text(encoding="utf-8")
            if tried := pattern.findall(log):
                return tried[-1].split(", ")[-1]
            time.sleep(0.1)
        raise AssertionError(f"nginx logged no request with route {route}")

    def pid(self, app_port: int) -> int:
        for port_file in self.run_dir.glob("app-*.port"):
            if int(port_file.read_text()) == app_port:
                return int(port_file.with_suffix(".pid").read_text())
        raise KeyError(app_port)


@pytest.fixture
def recipe(tmp_path: Path) -> Iterator[Recipe]:
    name = f"vru_test_{WORKER}_{uuid.uuid4().hex[:10]}"
    url = create_pg_database(name)
    env = dict(os.environ, VRU_DATABASE_URL=url)
    subprocess.run([VRU, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run(
        [VRU, "seed", "--with-demo-users"], env=env, check=True, capture_output=True, timeout=300
    )
    recipe = Recipe(url, tmp_path / "run", free_block(3))
    pids: list[int] = []
    try:
        started = recipe.script("start", "2", str(recipe.port))
        assert started.returncode == 0, started.stdout + started.stderr
        pids = [int(f.read_text()) for f in recipe.run_dir.glob("*.pid")]
        yield recipe
    finally:
        stopped = recipe.script("stop")
        drop_pg_database(name)
    assert stopped.returncode == 0, stopped.stderr
    assert "nginx stopped" in stopped.stdout and "stopped" in stopped.stdout.split("nginx")[1]
    assert not list(recipe.run_dir.glob("*.pid")) and len(pids) == 3
    for pid in pids:  # every process the recipe started has ended
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def signed_in(base: str, route: str, user: str = "staff") -> StreamlitSession:
    app = StreamlitSession(base, route=route)
    await app.connect()
    await app.run()
    await app.sign_in(user, f"{user}-demo-password")
    return app


async def resumed(base: str, cookies: dict[str, str], route: str) -> StreamlitSession:
    """A tab of the browser holding ``cookies``, opened with ``route``: signed in without
    signing in again (the cookie's session is read from the database by whichever process)."""
    app = StreamlitSession(base, route=route, cookies=cookies)
    await app.connect()
    first = await app.run()
    assert "Signed in as **staff** (staff)" in first.texts(), first.texts()[:3]
    return app


async def save_delivery(app: StreamlitSession, where: dict[str, str], opportunities: int) -> None:
    await app.run(page="Record deliveries")
    await app.run(values=where)
    field = next(k for k in app.widgets if k.startswith("form_opportunities_"))
    saved = await app.run(values={field: opportunities}, click="Save")
    assert not saved.errors(), saved.errors()


async def recorded(app: StreamlitSession, where: dict[str, str]) -> int:
    """The figures the form shows after "Reload figures" (it keeps what it first read, so that a
    save over someone else's newer one is refused)."""
    await app.run(page="Record deliveries")
    await app.run(values=where, click="form_reload")
    field = next(k for k in app.widgets if k.startswith("form_opportunities_"))
    return int(app.widgets[field].number_input.default)


def test_two_processes_behind_nginx(recipe: Recipe) -> None:
    status = recipe.script("status")
    assert status.returncode == 0 and status.stdout.count("healthy") == 2, status.stdout
    secret = recipe.run_dir / "session-secret"  # one for both processes, readable by the owner only
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_text().strip()) >= 32
    routes: dict[str, str] = {}
    for i in range(40):  # a route to each process
        routes.setdefault(recipe.upstream_of(f"browser-{i}"), f"browser-{i}")
        if len(routes) == 2:
            break
    assert len(routes) == 2, f"nginx sent every browser to one process: {routes}"
    (first, route_a), (second, route_b) = sorted(routes.items())
    assert recipe.upstream_of(route_a) == first  # sticky: the same browser, the same process
    where = {"form_programme": "", "form_borough": "Camden", "form_month": "2024-03"}

    async def scenario() -> None:
        a = await signed_in(recipe.base, route_a)
        # The same browser's cookie, served by the other process: still signed in.
        b = await resumed(recipe.base, a.cookies, route_b)
        await a.run(page="Record deliveries")
        where["form_programme"] = a.widgets["form_programme"].selectbox.options[0]
        before = await recorded(b, where)
        await save_delivery(a, where, before + 123)  # through the first process
        assert await recorded(b, where) == before + 123  # read through the second

        # The first process dies mid-session; the browser reconnects with its cookies, nginx
        # sends it to the live process, and it is still signed in and finds everything saved.
        os.killpg(recipe.pid(int(first.rsplit(":", 1)[1])), signal.SIGKILL)
        await a.close()
        again = await resumed(recipe.base, a.cookies, route_a)
        assert await recorded(again, where) == before + 123
        await save_delivery(again, where, before + 124)
        assert await recorded(b, where) == before + 124
        for app in (again, b):
            await app.close()

    # In a thread of its own: a browser test in the same worker (Playwright's sync API) may have
    # left an event loop running in this one, and asyncio.run refuses to nest.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()
    assert recipe.upstream_of(route_a).endswith(second.rsplit(":", 1)[1])
    status = recipe.script("status")
    assert status.returncode == 1 and "NOT answering" in status.stdout
