"""The nginx configuration the recipe renders: valid for nginx, and carrying the registry's own
settings (tests/test_deploy.py runs it; this checks what it says)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from deploy.render import Site, local_config, site_config


def test_site_routes_each_browser_to_one_process_and_upgrades_websockets(monkeypatch) -> None:
    monkeypatch.setenv("VRU_MAX_UPLOAD_BYTES", str(80 * 1024 * 1024 + 1))
    conf = site_config(Site(workers=3, first_port=8641, listen="127.0.0.1:8640"))
    assert conf.count("max_fails=1 fail_timeout=10s;") == 3
    assert "server 127.0.0.1:8643 " in conf and "server 127.0.0.1:8644" not in conf
    assert "hash $vru_route consistent;" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "client_max_body_size 81m;" in conf  # the registry's limit, rounded up
    assert "Secure" not in conf and "ssl" not in conf


def test_tls_site_redirects_plain_http_and_marks_the_cookie_secure() -> None:
    conf = site_config(
        Site(2, 8641, "443", "vru.example.gov.uk", "/etc/ssl/vru.pem", "/etc/ssl/vru.key")
    )
    assert "listen 443 ssl;" in conf and "return 301 https://$host$request_uri;" in conf
    assert "SameSite=Lax; Secure" in conf and "Strict-Transport-Security" in conf


def test_compose_upstreams_are_named_services() -> None:
    conf = site_config(Site(0, 0, "80", upstream=("app1:8501", "app2:8501")))
    assert "server app1:8501 " in conf and "server app2:8501 " in conf


@pytest.mark.skipif(
    not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists(),
    reason="nginx is not installed (CI installs it)",
)
def test_nginx_accepts_the_local_configuration(tmp_path: Path) -> None:
    (tmp_path / "nginx-tmp").mkdir()
    (tmp_path / "vru-site.conf").write_text(
        site_config(Site(2, 8641, "127.0.0.1:8640", access_log=str(tmp_path / "access.log")))
    )
    (tmp_path / "nginx.conf").write_text(local_config(tmp_path))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    checked = subprocess.run(
        [
            nginx,
            "-t",
            "-p",
            str(tmp_path),
            "-e",
            str(tmp_path / "e.log"),
            "-c",
            str(tmp_path / "nginx.conf"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr


def test_containers_share_one_session_secret_and_the_image_holds_the_server() -> None:
    """Every app container takes the one session secret from the environment (required), so a
    session made through one is valid in the other; the image holds what `vru serve` runs."""
    deploy = Path(__file__).resolve().parent.parent / "deploy"
    compose = (deploy / "compose.yaml").read_text(encoding="utf-8")
    shared = compose.split("x-vru-app:")[0]  # the environment every app service uses
    assert "  VRU_SESSION_SECRET: ${VRU_SESSION_SECRET:?" in shared
    assert compose.count("environment: *vru-environment") == 1
    assert "  app1: *vru-app" in compose and "  app2: *vru-app" in compose
    dockerfile = (deploy / "Dockerfile").read_text(encoding="utf-8")
    copied = " ".join(line for line in dockerfile.splitlines() if line.startswith("COPY"))
    assert "vru_server.py" in copied and "streamlit_app.py" in copied
