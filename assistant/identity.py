"""Who the caller is, and their groups: from SSO in production, from a trusted users file in development.

Groups never come from chat input. The dev users file is refused when `identity.allow_dev_users` is off (the
production profiles set that).
"""

from __future__ import annotations

import getpass
from pathlib import Path

from assistant.access import Principal
from assistant.errors import ConfigError, IdentityError
from assistant.settings import IdentitySettings, Settings
from assistant.yaml_file import read_yaml


def load_dev_users(path: Path) -> dict[str, Principal]:
    data = read_yaml(path, f"dev users file {path} does not exist; set identity.users_file")
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise ConfigError(f"{path}: expected 'users:' mapping user names to {{groups: [...]}}")
    principals: dict[str, Principal] = {}
    for name, entry in users.items():
        groups = entry.get("groups") if isinstance(entry, dict) else None
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ConfigError(f"{path}: user {name!r} needs 'groups:' as a list (an empty list reads nothing)")
        principals[str(name)] = Principal.of(str(name), groups)
    return principals


def load_dev_user_names(path: Path) -> dict[str, str]:
    """Each dev user's display name (`name:`), or their id where the file gives none; for pickers."""
    data = read_yaml(path, f"dev users file {path} does not exist; set identity.users_file")
    users = (data.get("users") if isinstance(data, dict) else None) or {}
    return {str(user): str(entry.get("name") or user) for user, entry in users.items() if isinstance(entry, dict)}


def dev_principal(settings: IdentitySettings, user: str) -> Principal:
    """The principal of `user` from the trusted dev users file."""
    if not settings.allow_dev_users:
        raise IdentityError("dev users are disabled in this profile; identities come from SSO only")
    if settings.users_file is None:
        raise ConfigError("identity.users_file is not set; --user needs a dev users file")
    users = load_dev_users(settings.users_file)
    if user not in users:
        raise IdentityError(f"unknown user {user!r} in {settings.users_file}; known: {', '.join(sorted(users))}")
    return users[user]


def resolve_principal(settings: Settings, user: str | None, groups: str | None) -> Principal:
    """The principal of a development caller: exactly one of a dev user's name or a comma-separated group list.

    There is no search without a principal. Production profiles take identities from SSO only."""
    if (user is None) == (groups is None):
        raise IdentityError("say who is asking: --user NAME (dev users file) or --groups G1,G2")
    if not settings.identity.allow_dev_users:
        raise IdentityError("this profile takes identities from SSO only; --user and --groups are for development")
    if user is not None:
        return dev_principal(settings.identity, user)
    return Principal.of("cli", parse_groups(groups or ""))


def parse_groups(groups: str) -> list[str]:
    """'G1, G2' -> ['G1', 'G2']."""
    return [g.strip() for g in groups.split(",") if g.strip()]


def cli_operator() -> str:
    """Who ran a command, as records keep it (a sync's history, a widening, an adapter's rollout): the login name
    where one is known."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name in this environment (a container without a passwd entry)
        return "cli"
