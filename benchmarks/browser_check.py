"""Ask the running app questions as users would, in a real browser, and save what each page showed: for reading
every answer against its source by hand (the verdicts go next to each record). Prints progress; asserts nothing.

    ASSISTANT_DATA_DIR=... python -m benchmarks.browser_check QUESTIONS.jsonl --out evals/results/browser-check-X.json

QUESTIONS.jsonl: one {"user": ..., "question": ...} a line, users of `samples/users.yaml`; a user's questions are
asked in order in one chat, so a question may follow up the one before. The data directory must hold the ingested
handbook (`assistant ingest samples/handbook`). The app runs as `assistant ui` with sign-in through a real OIDC
provider on loopback (oidc-provider-mock, a dev dependency), driven by Debian's headless chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from assistant.settings import CHECKOUT
from assistant.yaml_file import read_yaml
from ui.local_server import free_port, running_app

ANSWER_WAIT_MS = 600_000
FINISHED = re.compile(r" · \d+\.\d s$")  # the caption under each finished answer: "model · N.N s"


def provider_users(names: set[str]) -> list[Any]:
    from oidc_provider_mock import User

    users = read_yaml(CHECKOUT / "samples/users.yaml", "samples/users.yaml is missing: restore it")["users"]
    return [
        User(
            sub=name,
            claims={
                "email": f"{name}@northwind.example",
                "name": users[name]["name"],
                "groups": list(users[name]["groups"]),
            },
        )
        for name in sorted(names)
    ]


def ask(page: Any, question: str) -> dict[str, Any]:
    from playwright.sync_api import expect

    finished = page.get_by_text(FINISHED)
    before = finished.count()
    page.get_by_placeholder("Ask a question").fill(question)
    page.keyboard.press("Enter")
    expect(finished).to_have_count(before + 1, timeout=ANSWER_WAIT_MS)
    message = page.locator('[data-testid="stChatMessage"]').last
    expanders = message.locator('[data-testid="stExpander"]')
    for n in range(expanders.count()):
        expanders.nth(n).locator("summary").click()
    return {"shown": message.inner_text(), "sources": [expanders.nth(n).inner_text() for n in range(expanders.count())]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from oidc_provider_mock import run_server_in_thread
    from playwright.sync_api import sync_playwright

    asked = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    records: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory() as scratch,
        run_server_in_thread(port=0, user_claims=provider_users({a["user"] for a in asked})) as provider,
    ):
        port = free_port()
        secrets = Path(scratch) / "secrets.toml"
        secrets.write_text(
            "[auth]\n"
            f'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
            'cookie_secret = "a-browser-check-cookie-secret"\n'
            'client_id = "company-assistant"\nclient_secret = "check-secret"\n'
            f'server_metadata_url = "http://localhost:{provider.server_port}/.well-known/openid-configuration"\n',
            encoding="utf-8",
        )
        env = {
            **os.environ,
            "ASSISTANT_UI__AUTH": "oidc",
            "HF_HUB_OFFLINE": "1",
            "ASSISTANT_UI__KEEP_CONVERSATIONS": "false",
        }
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        with running_app(env, port, "--secrets", str(secrets), cwd=CHECKOUT) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
            pages: dict[str, Any] = {}
            for item in asked:
                user = item["user"]
                if user not in pages:
                    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
                    page.goto(url)
                    page.get_by_role("button", name="Sign in").click()
                    page.get_by_role("button", name=user, exact=True).click()
                    page.get_by_text("Ask the company's documents").wait_for(timeout=120_000)
                    pages[user] = page
                record = {"user": user, "question": item["question"], **ask(pages[user], item["question"])}
                records.append(record)
                print(f"{len(records)}/{len(asked)} {user}: {item['question']}", flush=True)
                args.out.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            browser.close()


if __name__ == "__main__":
    main()
