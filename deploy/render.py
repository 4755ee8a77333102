"""Render the nginx configuration from the registry's settings and the deployment's shape.

    python -m deploy.render site --workers 4 --first-port 8641 --listen 443 \\
        --server-name vru.example.gov.uk --tls-cert /etc/ssl/vru.pem --tls-key /etc/ssl/vru.key
    python -m deploy.render local --workers 2 --port 8640 --run-dir deploy/run
    python -m deploy.render site --upstream app1:8501,app2:8501 --listen 80    (Compose)

The upload limit comes from the one settings object (:func:`registry.config.get_settings`), so
nginx, Streamlit (``vru serve``) and the registry's own check agree.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

from registry.config import get_settings

HERE = Path(__file__).resolve().parent
# A process that refuses one connection is skipped for this long before nginx tries it again.
FAIL_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Site:
    workers: int
    first_port: int  # app processes listen on first_port .. first_port + workers - 1
    listen: str  # what nginx listens on: "8640", "127.0.0.1:8640", "443"
    server_name: str = "_"
    tls_cert: str | None = None
    tls_key: str | None = None
    app_host: str = "127.0.0.1"
    access_log: str = "/var/log/nginx/vru-access.log"
    upstream: tuple[str, ...] = ()  # explicit host:port of each process (Compose), else ports

    def servers(self) -> list[str]:
        if self.upstream:
            return list(self.upstream)
        return [f"{self.app_host}:{self.first_port + i}" for i in range(self.workers)]


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(f"@@{key}@@", value)
    if "@@" in template:
        raise ValueError("A placeholder in the nginx template was left unfilled.")
    return template


def site_config(site: Site) -> str:
    """The ``http``-level nginx configuration: upstream of the app processes and the server."""
    if not site.servers():
        raise ValueError("At least one app process is needed.")
    tls = site.tls_cert is not None and site.tls_key is not None
    servers = "\n".join(
        f"    server {server} max_fails=1 fail_timeout={FAIL_TIMEOUT_SECONDS}s;"
        for server in site.servers()
    )
    listen = f"    listen {site.listen}" + (" ssl;" if tls else ";")
    if tls:
        listen += (
            f"\n    ssl_certificate {site.tls_cert};\n    ssl_certificate_key {site.tls_key};"
            "\n    ssl_protocols TLSv1.2 TLSv1.3;"
        )
    redirect = (
        "server {\n    listen 80;\n    server_name "
        f"{site.server_name};\n    return 301 https://$host$request_uri;\n}}\n"
        if tls
        else ""
    )
    return _fill(
        (HERE / "nginx" / "vru-site.conf.template").read_text(encoding="utf-8"),
        {
            "UPSTREAM_SERVERS": servers,
            "REDIRECT_SERVER": redirect,
            "LISTEN": listen,
            "SERVER_NAME": site.server_name,
            "ACCESS_LOG": site.access_log,
            "MAX_BODY_MB": str(get_settings().max_upload_megabytes),
            "COOKIE_SECURE": "; Secure" if tls else "",
            "HSTS": (
                '    add_header Strict-Transport-Security "max-age=31536000" always;\n'
                if tls
                else ""
            ),
        },
    )


def local_config(run_dir: Path) -> str:
    """The whole ``nginx.conf`` of the private local instance (``make deploy-local``)."""
    template = (HERE / "nginx" / "local.conf.template").read_text(encoding="utf-8")
    return _fill(template, {"RUN_DIR": str(run_dir.resolve())})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.render", description=__doc__)
    parser.add_argument("what", choices=["site", "local"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8640, help="nginx's port (local)")
    parser.add_argument("--first-port", type=int, help="first app process (default: port + 1)")
    parser.add_argument("--listen", help="nginx listen directive (site; default 127.0.0.1:PORT)")
    parser.add_argument("--upstream", help="app processes as host:port,host:port (Compose)")
    parser.add_argument("--server-name", default="_")
    parser.add_argument("--access-log", default=Site.access_log)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--run-dir", type=Path, default=HERE / "run")
    args = parser.parse_args(argv)
    site = Site(
        workers=args.workers,
        first_port=args.first_port or args.port + 1,
        listen=args.listen or f"127.0.0.1:{args.port}",
        server_name=args.server_name,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        upstream=tuple(args.upstream.split(",")) if args.upstream else (),
        access_log=args.access_log,
    )
    if args.what == "site":
        print(site_config(site), end="")
        return
    args.run_dir.mkdir(parents=True, exist_ok=True)
    site = replace(site, access_log=str(args.run_dir.resolve() / "nginx-access.log"))
    (args.run_dir / "vru-site.conf").write_text(site_config(site), encoding="utf-8")
    (args.run_dir / "nginx.conf").write_text(local_config(args.run_dir), encoding="utf-8")
    print(args.run_dir / "nginx.conf")


if __name__ == "__main__":
    main()
