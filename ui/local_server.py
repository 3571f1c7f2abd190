"""`assistant ui` in a child process on a free loopback port, for the end-to-end test and the load benchmark:
started, waited for until its health endpoint answers, stopped on exit."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_app(
    env: dict[str, str], port: int, *args: str, cwd: Path | None = None, startup_s: float = 120
) -> Iterator[str]:
    """The app's URL while `assistant ui --port PORT ARGS` runs with `env` (in `cwd`)."""
    command = [sys.executable, "-m", "assistant.cli", "ui", "--port", str(port), *args]
    app = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_healthy(f"http://localhost:{port}/_stcore/health", app, startup_s)
        yield f"http://localhost:{port}"
    finally:
        app.terminate()
        app.wait(timeout=30)


def _wait_until_healthy(url: str, app: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if app.poll() is not None:
            raise RuntimeError(f"the app exited with {app.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {seconds} s")
