"""A built wheel works on its own: installed (not editable) into a clean virtual environment,
``vru db upgrade``, ``vru seed`` and the app all find their files from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import registry

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_installed_wheel_migrates_seeds_and_finds_the_app(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT, cwd=tmp_path)
    (wheel,) = dist.glob("vru_registry-*.whl")
    assert wheel.name.startswith(f"vru_registry-{registry.__version__}-")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)  # no system site-packages: only what the wheel declares
    bin_dir = env_dir / "bin"
    constraints = ["--constraint", ROOT / "requirements.lock"]
    _run(bin_dir / "python", "-m", "pip", "install", "-q", *constraints, wheel, cwd=tmp_path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["VRU_DATABASE_URL"] = f"sqlite:///{elsewhere / 'vru.db'}"
    vru = bin_dir / "vru"
    assert _run(vru, "--version", cwd=elsewhere, env=env).split()[-1] == registry.__version__
    assert "Database at revision" in _run(vru, "db", "upgrade", cwd=elsewhere, env=env)
    assert "Loaded synthetic demo data" in _run(vru, "seed", cwd=elsewhere, env=env)

    # `vru serve` runs vru_server.py, which serves the app beside it; the sign-in page renders
    # from the installed copy.
    check = (
        "from streamlit.testing.v1 import AppTest\n"
        "from registry.cli import APP_FILE\n"
        "assert 'site-packages' in str(APP_FILE), APP_FILE\n"
        "app = APP_FILE.parent / 'streamlit_app.py'\n"
        "assert app.is_file(), app\n"
        "at = AppTest.from_file(str(app), default_timeout=60).run()\n"
        "assert not at.exception, at.exception\n"
        "print([b.label for b in at.button])\n"
    )
    assert "Sign in" in _run(bin_dir / "python", "-c", check, cwd=elsewhere, env=env)
