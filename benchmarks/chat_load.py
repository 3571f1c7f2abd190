"""Chat under load: concurrent browser sessions against the running app on loopback. Prints figures; asserts
nothing.

    python -m benchmarks.chat_load [--sessions 20] [--timeout 900] [--engine] [--json OUT]
    python -m benchmarks.chat_load --engine --shadow 0,0.2,1,0 --sessions 16 --spacing 15 [--json OUT]

Starts `assistant ui` (embedded defaults: Qdrant Edge, the bundled Gemma 3 270M with the shipped adapter, CPU)
on a private copy of the sample handbook; with `--engine` the app answers through vLLM, started here as
`assistant serve-model` does, from the vLLM environment of `engine.python`. Then drives it with headless
chromium (Playwright over Debian's browser): every session opens the app, signs in with the dev picker's default
user and asks one question; each answer is timed from pressing Enter to its first streamed text (time to first
token) and to its finished answer. Phase 1 is chat alone; phase 2 the same while a corpus owner re-ingests the
whole handbook from the corpus page (every document edited, so every chunk is embedded again). Bounded:
`--sessions` at once (or one every `--spacing` seconds), `--timeout` seconds for a phase. Errors: an answer that
never finished, or an error shown on the page.

With `--shadow SHARES` the phases are instead one per share of questions answered again in shadow (0: shadow
off), by a candidate registered for the run: the served adapter's weights under a new id, so the shadow work is
the served answer's work again. Between phases `assistant tune rollout shadow` (or `tune rollback`, for 0) moves
it, as an engineer would, and the app picks the move up as it runs. Each phase reports how many shadowed questions
were answered, yielded to a served answer or dropped, so a phase whose shadow work never ran is visible. Sessions
at once would leave no gap for shadow work until the phase ends; `--spacing` makes questions arrive one after
another, so shadow answers run between them and must yield when the next one arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from assistant.adapters import adapters_dir, resolve_adapter
from assistant.components import open_components
from assistant.serve_model import prepare, start_engine, stop_engine, vllm_python, wait_until_serving
from assistant.settings import Settings, load_settings
from evals.rollout import shadow_figures
from ingestion.run import run_ingest
from tuning import registry
from ui.local_server import free_port, running_app

REPO = Path(__file__).resolve().parents[1]
HANDBOOK = REPO / "samples" / "handbook"
QUESTIONS = [
    "How do I reset my password?",
    "How many paid holidays are there this year?",
    "Can I work from another country for a month?",
    "What is the hotel limit when I travel?",
    "How do I report a lost laptop?",
    "When are expense reports due?",
    "What should I do in my first week?",
    "Where is the Pittsburgh office?",
    "How do I get help from IT?",
    "What does the code of conduct say about gifts?",
]
ANSWER_DONE = re.compile(r" · \d+\.\d s$")  # every finished answer shows "model · N.N s"
CANDIDATE = "shadow-benchmark"
# The candidate's training data: one curated line naming no document (its weights are the served adapter's).
CANDIDATE_DATA = b'{"prompt": "Question: Q?\\nAnswer:", "completion": " A.", "sources": [], "curated": true}\n'


@dataclass
class SessionResult:
    question: str
    ok: bool
    first_token_s: float | None
    answer_s: float | None
    error: str | None = None


async def chat_session(browser: Any, url: str, question: str, timeout_s: float) -> SessionResult:
    context = await browser.new_context()
    context.set_default_timeout(timeout_s * 1000)  # bounded by the phase, not by Playwright's 30 s
    page = await context.new_page()
    try:
        await page.goto(url)
        box = page.get_by_placeholder("Ask a question")
        await box.wait_for(timeout=timeout_s * 1000)
        if await page.get_by_test_id("stChatMessage").count():  # the timings below read the first exchange
            return SessionResult(question, False, None, None, "the chat was not empty before the question")
        await box.fill(question)
        asked = time.perf_counter()
        await page.keyboard.press("Enter")
        # The assistant's message is the second chat message; its first text is the first streamed token.
        await page.wait_for_function(
            "() => { const m = document.querySelectorAll('[data-testid=stChatMessage]');"
            " const text = m.length > 1 && m[1].querySelector('[data-testid=stMarkdownContainer]');"
            " return !!text && text.innerText.trim().length > 0; }",
            polling=100,
            timeout=timeout_s * 1000,
        )
        first = time.perf_counter() - asked
        await page.get_by_text(ANSWER_DONE).first.wait_for(timeout=timeout_s * 1000)
        done = time.perf_counter() - asked
        errors = await page.get_by_test_id("stException").count()
        errors += await page.get_by_test_id("stAlertContentError").count()
        return SessionResult(question, errors == 0, first, done, "error shown on the page" if errors else None)
    except Exception as exc:  # a timeout or a broken page is an error of this session, not of the benchmark
        return SessionResult(question, False, None, None, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        await context.close()


async def reingest(browser: Any, url: str, timeout_s: float, clicked: asyncio.Event) -> float | None:
    """Sign in as the corpus owner, start a re-ingest from the corpus page, wait for it to finish (None: it did
    not, within the phase's time)."""
    try:
        context = await browser.new_context()
        context.set_default_timeout(timeout_s * 1000)
        page = await context.new_page()
        await page.goto(url)
        await page.get_by_text("Signed in as").wait_for(timeout=timeout_s * 1000)
        await page.get_by_test_id("stSelectbox").click()
        await page.get_by_role("option", name="olivia").click()
        await page.get_by_role("link", name="Corpus").click()
        started = time.perf_counter()
        await page.get_by_role("button", name="Re-ingest now").click()
        clicked.set()
        await page.get_by_text("Re-ingest finished").wait_for(timeout=timeout_s * 1000)
        seconds = time.perf_counter() - started
        await context.close()
        return seconds
    except Exception as exc:
        print(f"re-ingest: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        clicked.set()
        return None


async def spaced(delay_s: float, session: Coroutine[Any, Any, SessionResult]) -> SessionResult:
    await asyncio.sleep(delay_s)
    return await session


async def phase(
    browser: Any, url: str, sessions: int, timeout_s: float, data: Path | None, spacing_s: float = 0.0
) -> dict[str, Any]:
    """`sessions` chats, at once or one every `spacing_s` seconds; with `data`, started once a re-ingest of every
    edited document is under way."""
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(sessions)]
    ingest: asyncio.Task[float | None] | None = None
    if data is not None:
        for doc in data.rglob("*.md"):  # an edit to every markdown document: all of them re-embedded
            doc.write_text(doc.read_text(encoding="utf-8") + "\n\nReviewed for the load benchmark.\n", encoding="utf-8")
        clicked = asyncio.Event()
        ingest = asyncio.create_task(reingest(browser, url, timeout_s, clicked))
        await clicked.wait()
    started = time.perf_counter()
    results = await asyncio.gather(
        *(spaced(i * spacing_s, chat_session(browser, url, q, timeout_s)) for i, q in enumerate(questions))
    )
    wall = time.perf_counter() - started
    return summarise(list(results), wall, await ingest if ingest is not None else None)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarise(results: list[SessionResult], wall: float, ingest_s: float | None) -> dict[str, Any]:
    firsts = [r.first_token_s for r in results if r.ok and r.first_token_s is not None]
    answers = [r.answer_s for r in results if r.ok and r.answer_s is not None]
    return {
        "sessions": len(results),
        "errors": sum(not r.ok for r in results),
        "first_token_p50_s": percentile(firsts, 0.5),
        "first_token_p95_s": percentile(firsts, 0.95),
        "answer_p50_s": percentile(answers, 0.5),
        "answer_p95_s": percentile(answers, 0.95),
        "answer_mean_s": statistics.fmean(answers) if answers else None,
        "wall_s": wall,
        "reingest_s": ingest_s,
        "results": [asdict(r) for r in results],
    }


def move_shadow(env: dict[str, str], share: float) -> None:
    """Put the candidate in shadow at `share` (0: roll it back) with the CLI, as an engineer would."""
    if share > 0:
        argv = ["tune", "rollout", "shadow", CANDIDATE, "--share", str(share), "--why", "chat-load benchmark"]
    else:
        argv = ["tune", "rollback", "--why", "chat-load benchmark: shadow off"]
    done = subprocess.run([sys.executable, "-m", "assistant.cli", *argv], env=env, capture_output=True, text=True)
    if done.returncode != 0 and not (share == 0 and "nothing to roll back" in done.stderr):
        raise SystemExit(f"assistant {' '.join(argv)}: {done.stderr.strip()}")


def shadow_counts(data_dir: Path, since: str) -> dict[str, int]:
    figures = shadow_figures(data_dir, CANDIDATE, since)
    return {"answered": figures.candidate.questions, **figures.skipped}


async def drain_shadow(data_dir: Path, since: str, timeout_s: float) -> None:
    """Wait until shadow work from the phase stops (no new answer or skip for 30 s): the next phase starts even."""
    last, still, deadline = shadow_counts(data_dir, since), 0.0, time.monotonic() + timeout_s
    while still < 30 and time.monotonic() < deadline:
        await asyncio.sleep(5)
        now = shadow_counts(data_dir, since)
        still = 0.0 if now != last else still + 5
        last = now


async def drive(
    url: str,
    sessions: int,
    timeout_s: float,
    corpus: Path,
    *,
    spacing_s: float = 0.0,
    shadow: list[float] | None = None,
    env: dict[str, str] | None = None,
    data_dir: Path | None = None,
    warm_prompts: bool = False,
) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed: apt-get install chromium")
    figures: dict[str, Any] = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        figures["warm_up"] = asdict(await chat_session(browser, url, QUESTIONS[0], timeout_s))  # loads the model
        if shadow is None:
            if warm_prompts:  # the engine's prefix cache would otherwise favour the second phase's repeated prompts
                warm = await asyncio.gather(*(chat_session(browser, url, q, timeout_s) for q in QUESTIONS[:sessions]))
                figures["warm_prompts"] = summarise(list(warm), 0.0, None)
            for name, data in (("chat", None), ("chat_while_reingesting", corpus)):
                figures[name] = await phase(browser, url, sessions, timeout_s, data, spacing_s)
                report(name, figures[name])
        else:
            assert env is not None and data_dir is not None
            # Every question once, unmeasured: the engine's prefix cache then holds each prompt in every phase
            # alike (otherwise the first phase alone pays for cold prompts).
            warm = await asyncio.gather(*(chat_session(browser, url, q, timeout_s) for q in QUESTIONS))
            figures["warm_prompts"] = summarise(list(warm), 0.0, None)
            for share in shadow:
                name = f"shadow_{share:.0%}" if share > 0 else "shadow_off"
                name += "_again" if name in figures else ""  # a share measured twice: drift between phases
                move_shadow(env, share)
                since = time.strftime("%Y-%m-%dT%H:%M:%S")
                figures[name] = await phase(browser, url, sessions, timeout_s, None, spacing_s)
                await drain_shadow(data_dir, since, timeout_s)
                figures[name]["shadow"] = shadow_counts(data_dir, since)
                report(name, figures[name])
        await browser.close()
    return figures


def report(name: str, f: dict[str, Any]) -> None:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"

    print(
        f"{name}: {f['sessions']} sessions, {f['errors']} errors, first token p50 {seconds(f['first_token_p50_s'])}"
        f" p95 {seconds(f['first_token_p95_s'])}, answer p50 {seconds(f['answer_p50_s'])}"
        f" p95 {seconds(f['answer_p95_s'])}, wall {seconds(f['wall_s'])}"
        + (f", re-ingest {seconds(f['reingest_s'])}" if "reingest_s" in f and f["reingest_s"] is not None else "")
        + ("".join(f", shadow {k} {v}" for k, v in f["shadow"].items()) if "shadow" in f else ""),
        flush=True,
    )


def with_engine(settings: Settings) -> Settings:
    """The run's settings answering through an engine on a free loopback port."""
    port = free_port()
    engine = settings.engine.model_copy(
        update={"python": vllm_python(load_settings()), "port": port, "url": f"http://127.0.0.1:{port}/v1"}
    )
    return settings.model_copy(update={"engine": engine})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds a phase may take at most")
    parser.add_argument("--engine", action="store_true", help="answer through vLLM (assistant serve-model)")
    parser.add_argument("--spacing", type=float, default=0.0, help="seconds between sessions' questions (0: at once)")
    parser.add_argument(
        "--shadow",
        type=lambda text: [float(share) for share in text.split(",")],
        help="phases by share of questions answered again in shadow, e.g. 0,0.2,1 (instead of the re-ingest phase)",
    )
    parser.add_argument(
        "--ingest-nice",
        type=int,
        default=None,
        help="the app's ingest.nice for this run (0: re-ingest beside chat, as before ingestion/priority.py)",
    )
    parser.add_argument(
        "--ingest-yield",
        type=float,
        default=None,
        help="the app's ingest.yield_to_answers_s for this run (0: embedding never waits for answers)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="chat-load-"))
    corpus = work / "handbook"
    shutil.copytree(HANDBOOK, corpus)
    settings = load_settings(data_dir=work / "data")
    shared_models = load_settings().models_dir.resolve()
    if shared_models.is_dir():  # reuse the converted model of ./assistant-data
        settings.data_dir.mkdir(parents=True)
        (settings.data_dir / "models").symlink_to(shared_models, target_is_directory=True)
    with open_components(settings) as components:
        run_ingest(components, corpus)
    if args.shadow:
        served = resolve_adapter(settings)
        if served is None:
            raise SystemExit("--shadow needs a served adapter whose weights the candidate copies")
        registry.register_copy(served, adapters_dir(settings), CANDIDATE, CANDIDATE_DATA)
    env = {
        **os.environ,
        "ASSISTANT_DATA_DIR": str(settings.data_dir),
        "HF_HUB_OFFLINE": "1",
        # Every session is one new question from an empty chat: a kept conversation would show the same user's
        # earlier answer (all sessions sign in as the dev picker's default user) and be mistaken for this one.
        "ASSISTANT_UI__KEEP_CONVERSATIONS": "false",
    }
    if args.ingest_nice is not None:
        env["ASSISTANT_INGEST__NICE"] = str(args.ingest_nice)
    if args.ingest_yield is not None:
        env["ASSISTANT_INGEST__YIELD_TO_ANSWERS_S"] = str(args.ingest_yield)
    engine = None
    try:
        if args.engine:
            settings = with_engine(settings)
            log = work / "engine.log"
            engine = start_engine(prepare(settings), log)
            wait_until_serving(settings.engine.url, engine, log, 600)
            env |= {"ASSISTANT_GENERATOR__BACKEND": "engine", "ASSISTANT_ENGINE__URL": settings.engine.url}
        with running_app(env, free_port()) as url:
            figures = asyncio.run(
                drive(
                    url,
                    args.sessions,
                    args.timeout,
                    corpus,
                    spacing_s=args.spacing,
                    shadow=args.shadow,
                    env=env,
                    data_dir=settings.data_dir,
                    warm_prompts=args.engine,
                )
            )
    finally:
        if engine is not None:
            stop_engine(engine)
        shutil.rmtree(work, ignore_errors=True)
    figures["backend"] = settings.engine.url if args.engine else "in-process"
    figures["spacing_s"] = args.spacing
    defaults = load_settings().ingest
    figures["ingest_nice"] = defaults.nice if args.ingest_nice is None else args.ingest_nice
    figures["ingest_yield_s"] = defaults.yield_to_answers_s if args.ingest_yield is None else args.ingest_yield
    figures["cpu_count"] = os.cpu_count()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
