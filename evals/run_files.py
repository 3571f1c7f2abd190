"""Where an evaluation run is saved: `<folder>/<created, without : and -><name>`, as indented JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def save_run(folder: Path, created: str, name: str, data: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{created.replace(':', '').replace('-', '')}{name}"
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return path
