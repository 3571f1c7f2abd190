"""docker-compose.yml: the app wired to a Qdrant server and a self-hosted Langfuse by environment, Langfuse with
what it needs, a GPU profile; validated by `docker compose config` where the compose plugin is installed."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from assistant.adapters import SHIPPED, read_record
from assistant.serve_model import LOGITS_PROCESSOR
from assistant.settings import load_settings
from tests.conftest import REPO

COMPOSE = REPO / "docker-compose.yml"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def test_every_service_of_the_deployment_is_there() -> None:
    services = compose()["services"]
    langfuse = {"langfuse-web", "langfuse-worker", "postgres", "clickhouse", "redis", "minio"}
    assert set(services) == {"app", "engine", "qdrant", *langfuse, "engine-gpu", "app-gpu", "tune"}
    assert all(services[name]["profiles"] == ["gpu"] for name in ("engine-gpu", "app-gpu", "tune"))
    assert "tuning/recipes/handbook-gpu.yaml" in " ".join(services["tune"]["command"])
    assert (REPO / "tuning" / "recipes" / "handbook-gpu.yaml").exists()


def test_the_app_reaches_qdrant_and_langfuse_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    app = compose()["services"]["app"]
    env = app["environment"]
    assert env["QDRANT_URL"] == "http://qdrant:6333" and env["LANGFUSE_BASE_URL"] == "http://langfuse-web:3000"
    for name, value in env.items():
        if not str(value).startswith("${"):
            monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-dev")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-dev")
    settings = load_settings()  # what the container's settings resolve to
    assert settings.profile == "server" and settings.store.backend == "server"
    assert settings.store.url == "http://qdrant:6333" and settings.tracing.base_url == "http://langfuse-web:3000"
    assert settings.ui.auth == "oidc" and not settings.identity.allow_dev_users  # production: SSO only
    assert settings.generator.backend == "engine" and settings.engine.url == "http://engine:8000/v1"


def test_the_engines_serve_the_model_with_lora_and_the_house_format() -> None:
    services = compose()["services"]
    assert "assistant serve-model" in " ".join(services["engine"]["command"])  # the CPU build, as tested here
    gpu = services["engine-gpu"]
    assert gpu["image"].startswith("vllm/vllm-openai:")
    arguments = " ".join(gpu["command"])
    assert "--enable-lora" in arguments and "--logits-processors=" + LOGITS_PROCESSOR in arguments
    shipped = read_record(SHIPPED)
    assert f"--lora-modules={shipped.id}=/plugin/assistant/shipped_adapter" in arguments
    assert gpu["environment"]["PYTHONPATH"] == "/plugin" and "./assistant:/plugin/assistant:ro" in gpu["volumes"]
    assert services["app-gpu"]["environment"]["ENGINE_URL"] == "http://engine-gpu:8000/v1"


def test_no_secret_has_a_default_and_langfuse_listens_on_loopback_only() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for name in ("LANGFUSE_SECRET_KEY", "LANGFUSE_ENCRYPTION_KEY", "NEXTAUTH_SECRET", "POSTGRES_PASSWORD"):
        assert f"${{{name}:-" not in text and f"${{{name}:?" in text
        assert name in (REPO / ".env.example").read_text(encoding="utf-8")
    assert compose()["services"]["langfuse-web"]["ports"] == ["127.0.0.1:3000:3000"]
    assert "ASSISTANT_PROFILE=server" in (REPO / "Dockerfile").read_text(encoding="utf-8")  # no dev sign-in


def test_compose_file_is_valid_for_docker_compose() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker client on this machine")
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker client has no compose plugin here")
    command = ["docker", "compose", "-f", str(COMPOSE), "--env-file", str(REPO / ".env.example"), "config", "-q"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
