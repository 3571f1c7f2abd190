"""Where an evaluation run is saved: `<folder>/<created, without : and -><name>`, as indented JSON; and the
checkout's commit that names runs and adapter records."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any


def save_run(folder: Path, created: str, name: str, data: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{created.replace(':', '').replace('-', '')}{name}"
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return path


def git_commit(repo: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"
