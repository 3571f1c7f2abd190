"""Reading one of the project's own YAML files (settings profiles, the dev users file, tuning recipes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from assistant.errors import ConfigError


def read_yaml(path: Path, missing: str) -> Any:
    """The document in `path` ({} when empty); a missing file is `missing` (the line that says what to do), invalid
    YAML one line naming the file."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(missing) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})".replace("\n", " ")) from exc
