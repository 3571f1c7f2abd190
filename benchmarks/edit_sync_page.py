"""A corpus owner's one-paragraph edit, synced from the corpus page as she does it: the real app (`assistant ui`,
dev sign-in), Debian's chromium, the sample handbook copied and ingested into a scratch data directory. Each
round appends a line to `company/holidays.md`, presses "Re-ingest now" and times the click until the page shows
the new "Re-ingest finished" (the sync and its impact report); with `--busy`, an employee's question is being
answered by the same app on the same cores while she presses it. Prints figures, asserts nothing.

    python -m benchmarks.edit_sync_page [--rounds 3] [--busy]

The answer model is loaded before the first round (a first question converts it once per data directory; an
existing ./assistant-data/models is reused).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.components import open_components
from assistant.settings import CHECKOUT, load_settings
from ingestion.run import run_ingest
from ui.local_server import free_port, running_app

EDITED = Path("company/holidays.md")
FINISHED = re.compile(r"Re-ingest finished at [\d:]+ in [\d.]+ s")
ANSWERED = re.compile(r" · \d+\.\d s$")  # each finished answer's "model · N.N s" caption


def new_page(browser: Any, url: str, path: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 1200}).new_page()
    page.goto(url + path)
    return page


def send(page: Any, question: str) -> None:
    """Type and send a question; the app answers it while this script goes on (one thread drives every page)."""
    page.get_by_placeholder("Ask a question").wait_for(timeout=300_000)
    page.get_by_placeholder("Ask a question").fill(question)
    page.keyboard.press("Enter")


def answered(page: Any, count: int) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_text(ANSWERED)).to_have_count(count, timeout=600_000)


def reingest(page: Any) -> tuple[float, str]:
    """Seconds from the click to the page showing this re-ingest's 'finished' line, and that line."""
    done = page.get_by_text(FINISHED)
    before = done.inner_text() if done.count() else ""
    started = time.monotonic()
    page.get_by_role("button", name="Re-ingest now").click()
    while not (done.count() and done.inner_text() != before):
        failed = page.locator('[data-testid="stAlertContentError"]')
        if failed.count():
            raise RuntimeError(f"the corpus page shows an error: {failed.first.inner_text()}")
        if time.monotonic() - started > 300:
            page.screenshot(path="edit-sync-page-timeout.png", full_page=True)
            raise TimeoutError("the re-ingest did not finish within 300 s (screenshot: edit-sync-page-timeout.png)")
        page.wait_for_timeout(100)
    return time.monotonic() - started, done.inner_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy", action="store_true", help="an employee's question in flight during each sync")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        corpus, data_dir = Path(scratch) / "handbook", Path(scratch) / "data"
        shutil.copytree(CHECKOUT / "samples/handbook", corpus)
        with open_components(load_settings(data_dir=data_dir)) as components:
            assert run_ingest(components, corpus, None).ok
        if (CHECKOUT / "assistant-data/models").is_dir():
            (data_dir / "models").symlink_to(CHECKOUT / "assistant-data/models", target_is_directory=True)
        env = {
            **os.environ,
            "ASSISTANT_DATA_DIR": str(data_dir),
            "HF_HUB_OFFLINE": "1",
            "ASSISTANT_UI__KEEP_CONVERSATIONS": "false",
        }
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        seconds: list[float] = []
        with running_app(env, free_port(), cwd=CHECKOUT) as url, sync_playwright() as playwright:
            flags = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=flags)
            chat = new_page(browser, url, "/?user=dana")
            started = time.monotonic()
            send(chat, "How many floating holidays do I get?")
            answered(chat, 1)
            print(f"model loaded, first answer {time.monotonic() - started:.1f} s", flush=True)
            page = new_page(browser, url, "/corpus?user=olivia")
            page.get_by_role("button", name="Re-ingest now").wait_for(timeout=120_000)
            for round_number in range(args.rounds):
                path = corpus / EDITED
                path.write_text(path.read_text(encoding="utf-8") + f"\n\nNote {round_number}: nothing changes.\n")
                if args.busy:
                    send(chat, f"What is the EU per diem? ({round_number + 1})")
                    chat.wait_for_timeout(3000)  # the question is being answered when she clicks
                took, shown = reingest(page)
                seconds.append(took)
                print(f"round {round_number + 1}: click to finished {took:.1f} s; the page says: {shown}", flush=True)
                if args.busy:
                    answered(chat, round_number + 2)
                page.wait_for_timeout(1100)  # the next "finished at" line names another second
            browser.close()
    busy = "an employee's question in flight" if args.busy else "the app otherwise idle"
    print(
        f"one edit of {EDITED} from the corpus page, {busy}, 2 cores: median {statistics.median(seconds):.1f} s "
        f"(min {min(seconds):.1f}, max {max(seconds):.1f})"
    )


if __name__ == "__main__":
    main()
