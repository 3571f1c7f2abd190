"""The Streamlit app through Streamlit's AppTest, on the real runtime: Qdrant Edge with the sample handbook, the
bundled Gemma 3 270M with the shipped adapter (converted once per session, ~50 s), real sign-in code paths (the
dev picker, and `st.user` as Streamlit fills it after an OIDC sign-in; the browser test drives a real provider).

Who sees which page, a page reached directly by someone it is not for, a cited answer whose source opens, a
refusal, feedback recorded, a re-ingest from the corpus page, the quality page, dev sign-in refused in production.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from assistant.access import Principal
from assistant.feedback import read_feedback
from assistant.identity import load_dev_users
from assistant.settings import Settings, load_settings
from evals.datasets import load_golden
from evals.leaks import probe_leaks
from evals.retrieval import evaluate
from ingestion.history import read_runs
from tests.conftest import HANDBOOK, REPO, ingest, runtime
from tests.review_data import (
    HOLIDAY_DOC,
    HOLIDAY_QUESTION,
    SALARY_DOC,
    SALARY_QUESTION,
    SALARY_TITLE,
    asked,
    carlos_and_dana,
    hit,
    record_documents,
    save_retrieval_run,
    write_log,
)
from ui.untrusted import escape_markdown
from ui.untrusted import label as one_line

APP = str(REPO / "ui" / "app.py")
VIEWS = REPO / "ui" / "views"
TIMEOUT = 300  # the first answer loads (and once per session converts) the model


def close_app_runtime() -> None:
    """The app's cached runtime holds the embedded index open: release it for the next test."""
    import streamlit as st

    from ui import runtime as app_runtime

    app_runtime.components().close()
    st.cache_resource.clear()


@pytest.fixture
def app_data(handbook_index: Settings, bundled_models: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The app runs on the session's handbook index (it only reads it) with the session's converted model."""
    models = handbook_index.data_dir / "models"
    if not models.exists():
        models.symlink_to(bundled_models, target_is_directory=True)
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(handbook_index.data_dir))
    monkeypatch.setenv("ASSISTANT_UI__KEEP_CONVERSATIONS", "false")  # the shared index's folder is only read
    yield load_settings()
    close_app_runtime()


@pytest.fixture
def own_app_data(app_data: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The same app on a copy of the index's folder, which it may write to (kept conversations)."""
    close_app_runtime()
    data = tmp_path / "data"
    shutil.copytree(app_data.data_dir, data, symlinks=True, ignore=shutil.ignore_patterns("*.lock"))
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(data))
    monkeypatch.setenv("ASSISTANT_UI__KEEP_CONVERSATIONS", "true")
    yield load_settings()
    close_app_runtime()


def signed_in(user: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.selectbox(key="dev_user").set_value(user).run()
    assert not at.exception, at.exception
    return at


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def forbidden(at: AppTest, page: str) -> bool:
    """The page stopped at its guard: its "Forbidden" and nothing of the page itself."""
    errors = [e.value for e in at.error]
    return errors == [f"Forbidden: the {page} page is not open to your groups."] and not at.title and not at.exception


def test_the_dev_picker_shows_names_and_the_url_keeps_the_user_across_reloads(app_data: Settings) -> None:
    at = signed_in("dana")
    picker = at.selectbox(key="dev_user")
    assert "Dana Kowalski (dana)" in picker.options and picker.value == "dana"
    assert at.query_params["user"] == "dana"  # the URL names her: a reload signs her in again
    reloaded = AppTest.from_file(APP, default_timeout=TIMEOUT)  # a new session (reload, new tab) of that URL
    reloaded.query_params["user"] = "olivia"
    reloaded.run()
    assert not reloaded.exception, reloaded.exception
    assert reloaded.selectbox(key="dev_user").value == "olivia"
    reloaded.switch_page(str(VIEWS / "corpus.py")).run()
    assert titles(reloaded) == ["Corpus: handbook"]
    stranger = AppTest.from_file(APP, default_timeout=TIMEOUT)
    stranger.query_params["user"] = "mallory"  # not in the users file: the picker's default, nobody invented
    stranger.run()
    assert stranger.selectbox(key="dev_user").value == "alice"


def test_each_role_is_offered_its_pages_only(app_data: Settings) -> None:
    dana = signed_in("dana")
    assert titles(dana) == ["Ask the company's documents"]  # the default page is chat
    for page in ("corpus", "quality"):  # hidden from her navigation, yet its URL opens to "Forbidden", not a 404
        dana.switch_page(str(VIEWS / f"{page}.py")).run()
        assert forbidden(dana, page)
    olivia = signed_in("olivia")
    olivia.switch_page(str(VIEWS / "corpus.py")).run()
    assert titles(olivia) == ["Corpus: handbook"] and not olivia.error
    olivia.switch_page(str(VIEWS / "quality.py")).run()
    assert forbidden(olivia, "quality")
    ian = signed_in("ian")
    ian.switch_page(str(VIEWS / "quality.py")).run()
    assert titles(ian) == ["Quality"] and not ian.exception


@pytest.mark.parametrize("page", ["corpus", "quality"])
def test_a_page_reached_directly_is_forbidden_to_others(app_data: Settings, page: str) -> None:
    at = AppTest.from_file(str(VIEWS / f"{page}.py"), default_timeout=60)
    at.run()
    assert [e.value for e in at.error] == ["Sign in first: this page needs to know who you are."]
    at.session_state["principal"] = Principal.of("dana", ["everyone", "engineering", "hr"])
    at.run()
    assert [e.value for e in at.error] == [f"Forbidden: the {page} page is not open to your groups."]
    assert not at.dataframe and not at.button  # nothing of the page rendered


def test_a_cited_answer_opens_its_source_and_takes_feedback(app_data: Settings) -> None:
    at = signed_in("dana")
    at.chat_input[0].set_value("How do I reset my password?").run()
    assert not at.exception, at.exception
    user, assistant = at.chat_message
    assert user.text[0].value == "How do I reset my password?"
    answer = assistant.text[0].value  # the answer, as text: it is the model's copy of documents
    cited = re.search(r"\[(\d+)\]", answer)
    assert cited is not None, answer
    source = at.expander[0]  # the first cited source (which document answers first is the evidence scorer's call)
    assert source.label.startswith(escape_markdown(f"[{cited.group(1)}] ")), source.label
    shown = " ".join([t.value for t in source.text] + [h.proto.body for h in source.html])
    assert "password" in shown.lower()  # the cited chunk itself
    assert any(c.value == "quoted verbatim from the source" for c in source.caption)
    assert any("adapter" in c.value for c in assistant.caption)  # the model and adapter that answered

    at.feedback[0].set_value(0).run()  # thumbs down
    at.text_input[0].set_value("It should link the reset portal").run()
    at.button(key="send-0").click().run()
    recorded = read_feedback(app_data.data_dir)
    assert [(f.user_id, f.helpful, f.comment) for f in recorded][-1] == (
        "dana",
        False,
        "It should link the reset portal",
    )
    assert recorded[-1].cited and escape_markdown(recorded[-1].cited[0]) in [c.value for c in source.caption]
    assert any("Feedback recorded" in c.value for c in at.caption)


def test_the_first_visit_loads_the_model_in_the_background_and_the_chat_says_so(
    app_data: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first answer waited 105 s in front of an empty bubble (2026-12-05): the model now loads from the first
    visit on, and the chat page says it is loading until it is."""
    import threading

    from assistant.generator import Generator
    from ui import runtime as app_runtime

    release, load = threading.Event(), Generator.load

    def slow_load(self: Generator) -> None:  # the load holds until the page has been seen loading
        release.wait(timeout=120)
        load(self)

    monkeypatch.setattr(Generator, "load", slow_load)
    at = signed_in("dana")
    warmup = app_runtime.model_warmup()
    assert any("Loading the answer model" in i.value for i in at.info) and not warmup.ready
    release.set()
    deadline = time.monotonic() + 240
    while not warmup.ready and time.monotonic() < deadline:
        time.sleep(0.5)
    assert warmup.ready and warmup.error is None
    at.run()
    assert not [i for i in at.info if "Loading the answer model" in i.value]
    assert app_runtime.components().generator.__dict__.get("_loaded") is not None  # loaded, not waiting for a question


def test_a_refusal_with_passages_found_says_it_is_unsure_and_shows_them(app_data: Settings) -> None:
    at = signed_in("dana")
    at.chat_input[0].set_value("What's the wifi password at the Lisbon office?").run()
    assert not at.exception, at.exception
    assert at.info and at.info[0].value.startswith("I'm not confident enough to answer")
    assert any("closest passages you can read" in c.value for c in at.caption)
    assert 1 <= len(at.expander) <= 3
    paths = [e.caption[0].value.replace("\\", "") for e in at.expander]  # escaped: document text is never markdown
    readable = ("company/", "security/password-and-mfa-policy.")  # dana's: samples/handbook/access.yaml
    assert all(p.startswith(readable) for p in paths), paths  # only what she may read


def test_a_reload_keeps_the_conversation_and_new_chat_starts_afresh(own_app_data: Settings) -> None:
    question = "What's the wifi password at the Lisbon office?"  # refused before generation: no model needed
    at = signed_in("dana")
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    reloaded = signed_in("dana")  # a new session of the same user, as a reload is
    assert [m.text[0].value for m in reloaded.chat_message if m.name == "user"] == [question]
    assert not signed_in("alice").chat_message  # never another user's
    next(b for b in reloaded.button if b.label == "New chat").click().run()
    assert not reloaded.chat_message and not signed_in("dana").chat_message  # gone, and stays gone


def test_no_approved_source_is_a_refusal_not_a_guess(app_data: Settings) -> None:
    at = signed_in("victor")  # a contractor with no groups reads nothing
    at.chat_input[0].set_value("How do I reset my password?").run()
    assert not at.exception, at.exception
    assert at.info and at.info[0].value.startswith("I can't find an answer to that in the documents you have access")
    assert not at.expander  # no source to open
    assert any("no model (refused before generation)" in c.value for c in at.caption)
    at.selectbox(key="dev_user").set_value("dana").run()
    assert not at.chat_message  # another user signed in: the previous conversation is gone


def test_dev_sign_in_is_refused_under_the_production_profile(
    app_data: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_PROFILE", "server")
    monkeypatch.setenv("ASSISTANT_UI__AUTH", "dev")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert [e.value for e in at.error] == [
        "dev sign-in is refused under profile 'server': identities come from SSO only (ui.auth=oidc)"
    ]
    assert not at.selectbox and not at.chat_input


def test_oidc_claims_decide_the_pages_and_missing_groups_read_nothing(
    app_data: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_UI__AUTH", "oidc")
    at = AppTest.from_file(APP, default_timeout=60)
    at.user = {"is_logged_in": False}
    at.run()
    assert [b.label for b in at.button] == ["Sign in"] and not at.chat_input
    at.user = {"is_logged_in": True, "sub": "u-17", "email": "owner@example.com", "groups": ["corpus-owners"]}
    at.run()
    assert any(c.value == "Groups: corpus-owners" for c in at.caption)
    at.switch_page(str(VIEWS / "corpus.py")).run()
    assert titles(at) == ["Corpus: handbook"]
    no_groups = AppTest.from_file(APP, default_timeout=60)
    no_groups.user = {"is_logged_in": True, "sub": "u-18", "email": "x@example.com", "groups": "corpus-owners"}
    no_groups.run()  # a string is not a list of groups: fail closed
    assert [w.value for w in no_groups.warning] == [
        "Your sign-in carries no 'groups' claim: you can read no documents."
    ]
    no_groups.switch_page(str(VIEWS / "corpus.py")).run()
    assert forbidden(no_groups, "corpus")


@pytest.fixture
def small_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, Path]]:
    """A corpus of its own (the corpus page re-ingests it): three handbook documents and their access rules."""
    corpus = tmp_path / "corpus"
    (corpus / "company").mkdir(parents=True)
    for name in ("holidays.md", "code-of-conduct.md", "remote-work-policy.md"):
        shutil.copy(HANDBOOK / "company" / name, corpus / "company" / name)
    (corpus / "access.yaml").write_text('rules:\n  - match: "company/**"\n    groups: [everyone]\n', encoding="utf-8")
    settings = load_settings(data_dir=tmp_path / "data")
    assert ingest(settings, corpus).ok
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(settings.data_dir))
    yield settings, corpus
    close_app_runtime()


def test_corpus_page_previews_and_runs_a_reingest(small_corpus: tuple[Settings, Path]) -> None:
    settings, corpus = small_corpus
    (corpus / "company" / "holidays.md").write_text("# Holidays\n\nEvery Friday is a holiday.\n", encoding="utf-8")
    (corpus / "company" / "code-of-conduct.md").unlink()
    at = signed_in("olivia")
    at.switch_page(str(VIEWS / "corpus.py")).run()
    table = at.dataframe[0].value
    assert sorted(table["path"]) == [
        "company/code-of-conduct.md",
        "company/holidays.md",
        "company/remote-work-policy.md",
    ]
    assert set(table["groups"]) == {"everyone"} and set(table["version"]) == {1}
    at.button[0].click().run()  # dry run
    diff = " ".join(m.value for m in at.markdown)
    assert "**0** added · **1** changed · **1** deleted" in diff
    assert escape_markdown("company/holidays.md") in diff and escape_markdown("company/code-of-conduct.md") in diff
    at.button[1].click().run()  # re-ingest, in the app process's background thread
    deadline = time.monotonic() + 120
    while not at.success and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
    assert at.success and at.success[0].value.startswith("Re-ingest finished")
    wall = float(at.success[0].value.split(" in ", 1)[1].split(" s")[0])  # "...finished at HH:MM:SS in N.N s"
    assert re.match(r"Re-ingest finished at \d\d:\d\d:\d\d in ", at.success[0].value)
    assert wall >= read_runs(settings.data_dir)[0]["seconds"]  # the job's wall time, not only the sync's phases
    history = at.dataframe[-1].value
    assert list(history["by"]) == ["olivia", "cli"]  # newest first: this re-ingest, then the first sync
    assert list(history["changed"]) == [1, 0] and list(history["deleted"]) == [1, 0]
    assert read_runs(settings.data_dir)[0]["documents"]["deleted"] == ["company/code-of-conduct.md"]
    versions = dict(zip(at.dataframe[0].value["path"], at.dataframe[0].value["version"], strict=True))
    assert versions == {"company/holidays.md": 2, "company/remote-work-policy.md": 1}
    impact = next(m.value for m in at.markdown if "golden questions touched" in m.value)
    skipped = re.search(r"\((\d+) more not re-asked: they expect none of the documents it changed\)", impact)
    assert skipped is not None and int(skipped.group(1)) > 0, impact  # the page says what the report skipped


def test_a_reingest_job_shows_every_phase_and_its_wall_time(small_corpus: tuple[Settings, Path]) -> None:
    from ui.ingest_job import AFTER, BEFORE, IngestJobs

    settings, corpus = small_corpus
    for name in ("holidays.md", "remote-work-policy.md"):  # two small edits: phases of a few steps each
        path = corpus / "company" / name
        path.write_text(path.read_text(encoding="utf-8") + "\n\nEdited.\n", encoding="utf-8")
    with runtime(settings) as components:
        job = IngestJobs(components).start(corpus, settings.store.collection, "olivia")
        assert job.finished.wait(180)
    assert job.error is None and job.summary is not None and len(job.summary.changed) == 2
    tasks = job.progress.snapshot()
    assert {"reading", "embedding", BEFORE, AFTER} <= set(tasks)  # the impact report's phases show too
    assert all(job.progress.fraction(task) == 1.0 for task in tasks)
    assert tasks["reading"] == (2, 2) and tasks[BEFORE][1] > 0 and tasks[BEFORE][0] == tasks[BEFORE][1]
    assert job.ended is not None and job.seconds == job.ended - job.started >= job.summary.seconds


def test_quality_page_shows_saved_runs_leaks_and_adapters(app_data: Settings) -> None:
    with runtime(app_data) as components:
        golden = load_golden(REPO / "samples" / "handbook-golden.jsonl")
        evaluate(components.retriever(), golden, app_data.retrieval.mode).save(app_data.eval_runs_dir)
        users = {"dana": Principal.of("dana", ["everyone"]), "hr": Principal.of("hr", ["everyone", "hr"])}
        probe_leaks(components.retriever(), users, ["How many holidays?"]).save(app_data.eval_runs_dir)
    (app_data.eval_runs_dir / "broken.json").write_text("{", encoding="utf-8")
    at = signed_in("ian")
    at.switch_page(str(VIEWS / "quality.py")).run()
    assert not at.exception, at.exception
    assert any(w.value == "Unreadable run files: broken.json" for w in at.warning)
    assert at.success[0].value.startswith("No leaks:") and "by 2 users on handbook" in at.success[0].value
    questions = at.dataframe[0].value
    assert len(questions) == len([q for q in golden.queries if q.relevant])
    assert any(c.value.startswith("Serving: handbook-cpu-") for c in at.caption)  # the shipped adapter
    (app_data.eval_runs_dir / "broken.json").unlink()
    for leftover in app_data.eval_runs_dir.glob("*.json"):
        json.loads(leftover.read_text(encoding="utf-8"))  # every file the page read is valid JSON
        leftover.unlink()  # the session's index stays as other tests expect it


def test_dev_sign_in_is_served_on_loopback_only(tmp_path: Path) -> None:
    from tests.conftest import run

    result = run("ui", "--address", "0.0.0.0", data_dir=tmp_path)
    assert result.returncode == 1
    assert "dev sign-in lets anyone pick any user: serve it on localhost only" in result.stderr


def test_a_configured_address_off_loopback_is_refused_too(tmp_path: Path) -> None:
    from tests.conftest import run

    result = run("ui", data_dir=tmp_path, extra_env={"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"})  # Streamlit's own
    assert result.returncode == 1
    assert "dev sign-in lets anyone pick any user: serve it on localhost only" in result.stderr


def test_assistant_ui_passes_only_the_flags_given_and_hides_the_deploy_toolbar(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit import config

    from ui.cli import streamlit_flags

    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text("[browser]\ngatherUsageStats = true\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # Streamlit reads .streamlit/config.toml from the working directory
    monkeypatch.setenv("STREAMLIT_SERVER_PORT", "9123")
    try:
        flags = streamlit_flags(settings, None, None)
        assert "--server.port" not in flags  # STREAMLIT_SERVER_PORT decides
        assert "--browser.gatherUsageStats" not in flags  # config.toml decides
        assert flags[flags.index("--client.toolbarMode") + 1] == "viewer"  # no "Deploy": users only view the app
        assert flags[flags.index("--server.address") + 1] == "localhost"  # dev sign-in, nothing configured
        given = streamlit_flags(settings, 8600, "127.0.0.1")
        assert given[:4] == ["--server.port", "8600", "--server.address", "127.0.0.1"]
        monkeypatch.setenv("STREAMLIT_CLIENT_TOOLBAR_MODE", "developer")
        assert "--client.toolbarMode" not in streamlit_flags(settings, None, None)
        oidc = settings.model_copy(update={"ui": settings.ui.model_copy(update={"auth": "oidc"})})
        assert "--server.address" not in streamlit_flags(oidc, None, None)  # Streamlit's address decides
    finally:
        monkeypatch.undo()
        config.get_config_options(force_reparse=True)  # the rest of the session sees its own configuration


def test_a_refused_question_reaches_the_review_queue_and_becomes_a_corpus_gap(app_data: Settings) -> None:
    data = app_data.data_dir
    written = [data / name for name in ("questions.jsonl", "review-decisions.jsonl", "corpus-gaps.jsonl")]
    for path in written:
        path.unlink(missing_ok=True)
    try:
        at = signed_in("dana")
        at.chat_input[0].set_value("What's the wifi password at the Lisbon office?").run()
        assert not at.exception, at.exception
        reviewer = signed_in("ian")
        reviewer.switch_page(str(VIEWS / "quality.py")).run()
        assert not reviewer.exception, reviewer.exception
        [group] = [e for e in reviewer.expander if "wifi password" in e.label]
        assert "refused x1" in group.label
        [gap] = [b for b in group.button if str(b.key).startswith("gap-")]  # other groups may be queued
        gap.click().run()
        assert not reviewer.exception, reviewer.exception
        assert not [e for e in reviewer.expander if "wifi password" in e.label]  # decided: off the queue
        [recorded] = [json.loads(line) for line in (data / "corpus-gaps.jsonl").read_text().splitlines()]
        assert recorded["question"] == "What's the wifi password at the Lisbon office?"
        assert recorded["provenance"]["reviewer"] == "ian"
        owner = signed_in("olivia")
        owner.switch_page(str(VIEWS / "corpus.py")).run()
        assert not owner.exception, owner.exception
        assert any("wifi password" in str(df.value) for df in owner.dataframe)
    finally:
        for path in written:
            path.unlink(missing_ok=True)


MARKDOWN_QUESTION = "Can I put ![logo](https://evil.example/x.png) and <b>bold</b> in [slides](https://evil.example)?"


@pytest.fixture
def review_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Carlos's salary-band question, Dana's holiday questions (one full of Markdown) and a saved run, in a data
    directory of their own whose sync state says who may read each document."""
    settings = load_settings(data_dir=tmp_path / "data")
    record_documents(settings)
    write_log(
        settings.data_dir, [*carlos_and_dana(), asked("dana", ["everyone"], MARKDOWN_QUESTION, [hit(HOLIDAY_DOC)])]
    )
    save_retrieval_run(settings.eval_runs_dir)
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(settings.data_dir))
    yield settings
    close_app_runtime()


def quality_page_as(principal: Principal) -> AppTest:
    at = AppTest.from_file(str(VIEWS / "quality.py"), default_timeout=TIMEOUT)
    at.session_state["principal"] = principal
    at.run()
    assert not at.exception, at.exception
    return at


def everything_shown(at: AppTest) -> str:
    shown = [e.label for e in at.expander] + [str(d.value.to_dict()) for d in at.dataframe]
    for elements in (at.text, at.caption, at.markdown, at.error, at.warning, at.success, at.subheader):
        shown += [str(e.value) for e in elements]
    shown += [str(option) for box in at.selectbox for option in box.options]
    shown += [h.proto.body for h in at.html]  # passages in source panes
    return "\n".join(shown)


def test_the_quality_page_redacts_what_the_reviewer_may_not_read(review_data: Settings) -> None:
    ian = quality_page_as(load_dev_users(REPO / "samples" / "users.yaml")["ian"])  # engineering
    shown = everything_shown(ian)
    for secret in (SALARY_QUESTION, SALARY_TITLE, SALARY_DOC, "carlos", "dana", "hr-compensation"):
        assert secret not in shown
    [redacted] = [d.value for d in ian.dataframe if "redacted" in d.value and "id" in d.value]
    assert list(redacted["asked"]) == [1] and "outside your groups" in redacted["redacted"][0]
    questions = ian.dataframe[0].value  # the saved run, question by question
    assert list(questions["question"]) == ["(redacted)", HOLIDAY_QUESTION]
    assert any(one_line(HOLIDAY_QUESTION) in e.label for e in ian.expander)
    assert any("asker-" in str(d.value.to_dict()) for d in ian.dataframe)  # askers under pseudonyms

    # Markdown in a question stays text: escaped in the expander's label, verbatim in its table
    [shown_label] = [e.label for e in ian.expander if "logo" in e.label]
    assert shown_label.startswith(one_line(MARKDOWN_QUESTION))
    assert "![logo](" not in shown_label and "<b>" not in shown_label
    assert MARKDOWN_QUESTION in shown

    rita = quality_page_as(load_dev_users(REPO / "samples" / "users.yaml")["rita"])  # hr-compensation
    assert any(one_line(SALARY_QUESTION) in e.label for e in rita.expander)
    assert list(rita.dataframe[0].value["question"]) == [SALARY_QUESTION, HOLIDAY_QUESTION]
    assert SALARY_DOC in everything_shown(rita) and "carlos" not in everything_shown(rita)


def test_a_question_is_shown_as_text_and_one_past_the_limit_is_refused_unlogged(app_data: Settings) -> None:
    at = signed_in("victor")  # no groups: the short question is refused before generation (no model run)
    pixel = "![p](http://127.0.0.1:9/pixel.png) How do I reset my password?"
    at.chat_input[0].set_value(pixel).run()
    assert not at.exception, at.exception
    assert [t.value for t in at.text][:1] == [pixel]  # the user's own words as text: no image is fetched
    assert not [m for m in at.markdown if "pixel.png" in m.value]

    long_question = "reset " + "x" * 110_000 + " ZZMARKER"
    at.chat_input[0].set_value(long_question).run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [
        "Not asked: the question is 110,015 characters long, over the 4,000 the assistant reads "
        "(retrieval.max_question_chars); ask it in fewer words."
    ]
    assert not [t for t in at.text if "ZZMARKER" in t.value]  # shown cut, never whole
    log = app_data.data_dir / "questions.jsonl"
    assert "ZZMARKER" not in (log.read_text() if log.exists() else "")  # not logged (nor searched, nor traced)


def test_the_corpus_page_lists_widenings_and_strict_mode_applies_them_only_when_accepted(
    small_corpus: tuple[Settings, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingestion.state import SyncState

    settings, corpus = small_corpus
    monkeypatch.setenv("ASSISTANT_INGEST__STRICT", "true")
    (corpus / "access.yaml").write_text(  # the holidays page goes to contractors as well
        'rules:\n  - match: "company/**"\n    groups: [everyone]\n'
        '  - match: "company/holidays.md"\n    groups: [everyone, contractors]\n',
        encoding="utf-8",
    )
    at = signed_in("olivia")
    at.switch_page(str(VIEWS / "corpus.py")).run()
    at.button[0].click().run()  # dry run
    [listed] = [w.value for w in at.warning if "would gain readers" in w.value]
    assert escape_markdown("company/holidays.md: readers grow from [everyone] to [everyone, contractors]") in listed

    def reingest() -> None:
        at.button[1].click().run()
        deadline = time.monotonic() + 120
        while not (at.success or at.error) and time.monotonic() < deadline:
            time.sleep(0.5)
            at.run()

    reingest()  # not accepted: strict mode syncs nothing
    assert any("1 document(s) failed" in e.value for e in at.error)
    state = SyncState(settings.state_path)
    try:
        assert state.documents("handbook")["company/holidays.md"].groups == ("everyone",)
    finally:
        state.close()
    at.checkbox[0].check().run()
    reingest()
    assert at.success and at.success[0].value.startswith("Re-ingest finished")
    state = SyncState(settings.state_path)
    try:
        assert state.documents("handbook")["company/holidays.md"].groups == ("everyone", "contractors")
        [record] = state.widenings("handbook")
    finally:
        state.close()
    assert record["run_by"] == "olivia" and record["accepted"] == 1


def test_quality_page_compares_served_adapters_and_moves_a_candidate(small_corpus: tuple[Settings, Path]) -> None:
    from assistant.adapters import adapters_dir
    from assistant.question_log import QuestionLog
    from assistant.rollout import read_rollout
    from tests.test_rollout import logged
    from tests.test_tuning import recorded_adapter
    from tuning import registry

    settings, _ = small_corpus
    recorded_adapter(settings, "current")
    recorded_adapter(settings, "candidate")
    with runtime(settings) as components:
        registry.promote(settings, "current", components.store)
    log = QuestionLog(settings.data_dir)
    for n in range(30):
        log.record(logged("current", label="supported" if n % 3 else "quoted"))
    for n in range(10):
        log.record(logged("candidate", refused=n == 0))
    at = signed_in("ian")
    at.switch_page(str(VIEWS / "quality.py")).run()
    assert not at.exception, at.exception
    compared = next(d.value for d in at.dataframe if "latency p50" in d.value.columns)
    rows = {row["adapter"]: row for _, row in compared.iterrows()}
    assert rows["current"]["questions"] == 30 and rows["current"]["supported"].startswith("0.67 [")
    assert rows["candidate"]["refusal rate"].endswith("n=10")  # every rate with its count and interval
    stages = next(d.value for d in at.dataframe if "stage" in d.value.columns)
    assert dict(zip(stages["id"], stages["stage"], strict=True)) == {"candidate": "candidate", "current": "promoted"}

    next(s for s in at.selectbox if s.label == "Adapter").set_value("candidate")
    at.radio[0].set_value("shadow")
    at.text_input[0].input("a first look")
    next(b for b in at.button if b.label == "Move").click().run()
    assert at.success and "candidate is in shadow at 20" in at.success[0].value, [e.value for e in at.error]
    staged = read_rollout(adapters_dir(settings))
    assert staged is not None and staged.stage == "shadow" and staged.adapter == "candidate"
    assert registry.list_adapters(settings)[0].rollout[-1]["who"] == "ui:ian"

    next(s for s in at.selectbox if s.label == "Adapter").set_value("candidate")
    at.radio[0].set_value("promoted (with its rollout evidence)")
    next(b for b in at.button if b.label == "Move").click().run()
    assert at.error and "has 0 shadow questions" in at.error[0].value  # refused with the CLI's line, page kept
    next(b for b in at.button if b.label == "Roll back now").click().run()
    assert at.success and "candidate left shadow" in at.success[0].value
    assert read_rollout(adapters_dir(settings)) is None


def test_quality_page_warns_of_an_adapter_trained_on_superseded_documents(small_corpus: tuple[Settings, Path]) -> None:
    """An adapter whose training documents changed (holidays.md: its hash differs) or were deleted (an hr
    document): the warning names the one Ian may read and only counts the other."""
    import dataclasses

    from assistant.adapters import write_record
    from tests.test_tuning import recorded_adapter

    settings, _ = small_corpus
    record = recorded_adapter(settings, "trained-before")
    sources = (
        {
            "collection": "handbook",
            "doc_id": "company/holidays.md",
            "hash": "old",
            "groups": ["everyone"],
            "examples": 3,
        },
        {"collection": "handbook", "doc_id": "company/remote-work-policy.md", "examples": 2},  # no hash: unchanged
        {"collection": "handbook", "doc_id": "hr/salary-bands.md", "hash": "x", "groups": ["hr"], "examples": 1},
    )
    write_record(dataclasses.replace(record, sources=sources))
    at = signed_in("ian")
    at.switch_page(str(VIEWS / "quality.py")).run()
    assert not at.exception, at.exception
    [warning] = [w.value.replace("\\", "") for w in at.warning if "superseded" in w.value]  # markdown unescaped
    assert "trained-before (trained on superseded documents" in warning and "holidays.md (changed, 3 ex.)" in warning
    assert "salary-bands" not in warning and "1 more document(s) you may not read" in warning
    assert "remote-work-policy" not in warning
