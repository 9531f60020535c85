"""`python -m bot serve` as a subprocess on loopback: start, wait until ready, SIGKILL, restart.

The environment points every channel at the fake platforms in the test process (Telegram in
webhook mode with a secret, WhatsApp through the fake Twilio) and the database at a temporary
SQLite file or a PostgreSQL database. The subprocess runs from a temporary directory, so no
`.env` of the checkout leaks into it; its output goes to a log file the tests show on failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = "https://bot.example.org"
SECRET = "Reliability_secret-0123456789"
TWILIO_TOKEN = "reliability-auth-token"
TWILIO_SID = "AC" + "0" * 32
WHATSAPP_FROM = "whatsapp:+14155238886"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(
    *,
    database_url: str,
    telegram_base: str,
    telegram_token: str,
    twilio_base: str,
    folder: Path,
    **extra: str,
) -> dict[str, str]:
    """The environment of `serve`: both channels against the fakes, quiet logs."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "TWILIO_", "WHATSAPP_", "DATABASE_", "PUBLIC_"))
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "CITYBOT_BOOTSTRAPPED": "1",
            "DATABASE_URL": database_url,
            "PUBLIC_BASE_URL": PUBLIC,
            "TELEGRAM_BOT_TOKEN": telegram_token,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_MODE": "webhook",
            "TELEGRAM_API_BASE_URL": telegram_base,
            "TELEGRAM_RATE_PER_SECOND": "400",
            "TELEGRAM_RATE_PER_CHAT": "50",
            "TWILIO_ACCOUNT_SID": TWILIO_SID,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TWILIO_WHATSAPP_FROM": WHATSAPP_FROM,
            "TWILIO_API_BASE_URL": twilio_base,
            "WHATSAPP_RATE_PER_SECOND": "400",
            "WHATSAPP_TEMPLATES_FILE": str(folder / "no-templates.yaml"),
            "SEND_TIMEOUT_SECONDS": "5",
            "STAFF_URNS": "",
            "LOG_LEVEL": "WARNING",
            "FILES_DIR": str(folder / "files"),
        }
    )
    env.update(extra)
    return env


class ServeProcess:
    """One `citybot serve` at a time on a fixed loopback port; killed and restarted at will."""

    def __init__(self, env: dict[str, str], folder: Path, *, port: int | None = None) -> None:
        """Remember how to start it; nothing runs yet."""
        self.env = env
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.log_path = folder / "serve.log"
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        """Where the app listens."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 60.0) -> float:
        """Start `serve` and wait until /healthz answers 200; return the seconds it took."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("serve is already running")
        began = time.monotonic()
        self._log = self.log_path.open("ab")
        self._log.write(f"\n--- start {self.starts + 1} ---\n".encode())
        self._log.flush()
        command = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1"]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            cwd=self.folder,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1
        self.wait_ready(timeout=timeout)
        return time.monotonic() - began

    def wait_ready(self, *, timeout: float) -> None:
        """Poll /healthz until it answers 200 (uvicorn listens once the lifespan started)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve did not become ready:\n{self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the process and reap it."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("serve is not running")
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        assert self.process.returncode == -signal.SIGKILL
        self.kills += 1
        self._close_log()

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) if it runs; safe to call twice."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._close_log()

    def alive(self) -> bool:
        """Whether the process runs."""
        return self.process is not None and self.process.poll() is None

    def _close_log(self) -> None:
        """Close the log file handle."""
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self, tail: int = 60) -> str:
        """The last lines of the process's output."""
        if not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    def __enter__(self) -> ServeProcess:
        """Start on entry."""
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Always stop."""
        self.stop()
