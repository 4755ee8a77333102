"""Files the package needs at run time that live at the top of the repository.

``alembic/`` (migrations), ``seed/`` (demo data), ``streamlit_app.py`` (the app),
``vru_server.py`` (the app with its session routes) and
``.streamlit/config.toml`` stay at the top level of a source checkout; a built wheel carries
copies under ``registry/_data/`` (``[tool.hatch.build.targets.wheel.force-include]`` in
``pyproject.toml``). :func:`bundled` finds each one in either install, so ``vru db upgrade``,
``vru seed`` and ``vru serve`` work from any directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: Name under ``registry/_data/`` in a wheel -> path relative to the top of a source checkout.
BUNDLED = {
    "alembic": "alembic",
    "seed": "seed",
    "streamlit_app.py": "streamlit_app.py",
    "vru_server.py": "vru_server.py",
    "streamlit_config.toml": ".streamlit/config.toml",
}


def bundled(name: str) -> Path:
    """The file or folder ``name`` (a key of :data:`BUNDLED`) as a path on disk."""
    packaged = files("registry") / "_data" / name
    if packaged.is_file() or packaged.is_dir():
        # Wheels are installed unpacked, so the resource is a real path on disk.
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / BUNDLED[name]
