from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assistant.errors import IndexInUseError
from assistant.store import VectorSpace
from assistant.store.edge import EdgeStore


def test_second_process_gets_one_clear_line(tmp_path: Path) -> None:
    holder = EdgeStore(tmp_path)
    holder.ensure_collection("c", VectorSpace("test", 4))
    try:
        code = (
            "import sys\nfrom pathlib import Path\n"
            "from assistant.store import VectorSpace\nfrom assistant.store.edge import EdgeStore\n"
            "from assistant.errors import IndexInUseError\n"
            "try:\n    EdgeStore(Path(sys.argv[1])).ensure_collection('c', VectorSpace('test', 4))\n"
            "except IndexInUseError as exc:\n    print(exc)\n"
        )
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
        message = out.stdout.strip()
        assert message.startswith(f"the index {tmp_path / 'c'} is in use by pid ")
        assert "server profile" in message and "\n" not in message
    finally:
        holder.close()


def test_lock_is_released_on_close(tmp_path: Path) -> None:
    first = EdgeStore(tmp_path)
    first.ensure_collection("c", VectorSpace("test", 4))
    first.close()
    second = EdgeStore(tmp_path)
    second.ensure_collection("c", VectorSpace("test", 4))  # would raise if the lock leaked
    second.close()


def test_same_process_second_store_is_refused_too(tmp_path: Path) -> None:
    first = EdgeStore(tmp_path)
    first.ensure_collection("c", VectorSpace("test", 4))
    try:
        with pytest.raises(IndexInUseError):
            EdgeStore(tmp_path).ensure_collection("c", VectorSpace("test", 4))
    finally:
        first.close()
