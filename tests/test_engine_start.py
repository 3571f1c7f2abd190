"""An engine that cannot start says why in one error: it exited (with its code) or timed out, the likely cause read
from its log (a port taken, memory), and the log's last lines. A real process stands in for vLLM: only its exit and
its log matter here (the real engine starts in tests/test_engine.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assistant.engine import EngineError
from assistant.serve_model import likely_cause, wait_until_serving
from ui.local_server import free_port


def failing(log: Path, printed: str, code: int) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        script = f"import sys; print({printed!r}); sys.exit({code})"
        return subprocess.Popen([sys.executable, "-c", script], stdout=out, stderr=subprocess.STDOUT)


def test_an_engine_that_exits_is_reported_with_its_code_cause_and_log(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    process = failing(log, "OSError: [Errno 98] error while attempting to bind: address already in use", 1)
    process.wait()
    with pytest.raises(EngineError) as raised:
        wait_until_serving(f"http://127.0.0.1:{free_port()}/v1", process, log, timeout_s=30)
    message = str(raised.value)
    assert "exited with code 1, likely: the port is taken" in message and "address already in use" in message


def test_the_likely_cause_is_read_from_the_log_or_the_exit_code() -> None:
    assert "not enough memory" in likely_cause("torch.OutOfMemoryError: CUDA out of memory", 1)
    assert "killed for memory" in likely_cause("Engine core initialization failed", -9)
    assert likely_cause("Engine core initialization failed", 1) == ""  # nothing says: no guess
