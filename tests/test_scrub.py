"""Personal data and secrets scrubbed out of training examples before they can train (`tuning/scrub.py`), and
near-duplicate questions found by MinHash LSH (`evals/near_duplicates.py`)."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.house_format import is_house_format, parse_answer, render_answer
from assistant.prompt import END_OF_ANSWER, ContextBlock, render_training_example
from assistant.recipe import ItemSource, Recipe, ScrubRecipe
from assistant.settings import Settings
from evals.held_out import words
from evals.near_duplicates import earlier_matches, earlier_matches_pairwise
from tests.conftest import REPO, run, runtime
from tests.test_tuning import CURATED, HANDBOOK_ITEMS, tiny_recipe, write_lines
from tuning.build_data import build, render_examples
from tuning.items import load_items
from tuning.scrub import Policy, Scrub, report_path, scanners, verbatim_up_to_placeholders

EMAIL = "jordan.lee@northwind-robotics.com"
PHONE = "+1 (412) 555-0199"
IBAN = "DE89 3704 0044 0532 0130 00"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----"
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
HELPDESK = "+1 (412) 555-0100"  # the helpdesk's public line: on the allow-list, taught as it is
PLANTED = (EMAIL, PHONE, IBAN, AWS_KEY, PRIVATE_KEY, JWT, "BEGIN RSA PRIVATE KEY", "jordan.lee")


def answered(question: str, block: str, answer: str, quote: str) -> dict[str, object]:
    """A curated example in the house format: one block shown, an answer citing it and a quote of it."""
    prompt, completion = render_training_example(
        question, [ContextBlock("Contacts", None, block)], render_answer(answer, [quote], 1)
    )
    return {"prompt": prompt, "completion": completion, **CURATED}


def hand_written() -> list[dict[str, object]]:
    return [
        answered(
            "Who do I write to about payroll?",
            f"Payroll questions go to Jordan Lee at {EMAIL} or {PHONE}.",
            "Write to Jordan Lee [1].",
            f"Payroll questions go to Jordan Lee at {EMAIL} or {PHONE}.",
        ),
        answered(
            "Where are refunds paid?",
            f"Refunds are paid to the company account {IBAN}.",
            "To the company account [1].",
            f"Refunds are paid to the company account {IBAN}.",
        ),
        answered(
            "How do I reach the helpdesk?",
            f"Call the helpdesk on {HELPDESK}.",
            "Call the helpdesk [1].",
            f"Call the helpdesk on {HELPDESK}.",
        ),
        answered("Which key does the deploy job use?", f"The deploy job reads {AWS_KEY}.", "A key [1].", "reads"),
        answered("What opens the vault?", f"{PRIVATE_KEY}\nMIIEpAIBAAKCAQEA", "A key [1].", "MIIEpAIBAAKCAQEA"),
        answered("What token does the bot send?", f"The bot sends {JWT} on each call.", "A token [1].", "each call"),
        answered("When does the office open?", "The office opens at 8 am.", "At 8 am [1].", "opens at 8 am"),
        answered(f"Is {EMAIL} the payroll contact?", "Ask the office.", "Ask the office [1].", f"Write to {EMAIL}"),
    ]


@pytest.fixture
def allow_list(tmp_path: Path) -> Path:
    path = tmp_path / "allow.txt"
    path.write_text(f"{HELPDESK}\n", encoding="utf-8")
    return path


def recipe_with(tiny_model: Path, allow_list: Path, **scrub: object) -> Recipe:
    recipe = tiny_recipe(tiny_model)
    recipe.scrub = ScrubRecipe(allow_list=str(allow_list), ner=False, **scrub)  # type: ignore[arg-type]
    return recipe


def test_planted_values_are_found_acted_on_counted_and_never_printed(
    settings: Settings, tiny_model: Path, allow_list: Path, tmp_path: Path
) -> None:
    data = write_lines(tmp_path / "train.jsonl", hand_written())
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(
        f"name: tiny\nbase_model: {tiny_model}\nscrub: {{allow_list: {allow_list}, ner: false}}\n", encoding="utf-8"
    )
    checked = run("tune", "check", str(data), "--recipe", str(recipe_file), data_dir=settings.data_dir)
    assert checked.returncode == 1, checked.stderr
    assert f"{data}:1: personal-data: 1 EMAIL_ADDRESS, 1 PHONE_NUMBER: the scrub policy would redact" in checked.stdout
    assert f"{data}:2: personal-data: 1 IBAN_CODE: the scrub policy would redact" in checked.stdout
    assert f"{data}:4: secret:" in checked.stdout and "AWS_ACCESS_KEY" in checked.stdout
    assert f"{data}:5: secret:" in checked.stdout and "PRIVATE_KEY" in checked.stdout
    assert f"{data}:6: secret:" in checked.stdout and "JSON_WEB_TOKEN" in checked.stdout
    assert "scanners: presidio-analyzer" in checked.stdout and "detect-secrets" in checked.stdout
    assert f"{data}:8: quote-not-shown: a quote of the answer is in no block of the prompt" in checked.stdout

    scrubbed = run("tune", "check", str(data), "--recipe", str(recipe_file), "--scrub", data_dir=settings.data_dir)
    report = json.loads(report_path(data).read_text())
    assert report["counts"]["EMAIL_ADDRESS"] == {"redact": 2} and report["counts"]["IBAN_CODE"] == {"redact": 1}
    assert report["counts"]["PHONE_NUMBER"] == {"redact": 1, "allow": 1}  # the helpdesk's line is allowed
    assert report["counts"]["AWS_ACCESS_KEY"] == {"fail": 1} and report["counts"]["JSON_WEB_TOKEN"] == {"fail": 1}
    outcomes = {line["line"]: line["outcome"] for line in report["lines"]}
    assert outcomes == {1: "redacted", 2: "redacted", 3: "kept", 4: "failed", 5: "failed", 6: "failed", 8: "redacted"}
    assert report["examples"] == 8 and report["kept"] == 5 and report["dropped"] == 3
    assert scrubbed.returncode == 1  # the secrets' examples are out, and the policy fails on them: train refuses
    assert "3 example(s) held a secret" in scrubbed.stdout

    kept = [json.loads(line) for line in data.read_text().splitlines()]
    assert len(kept) == 5 and HELPDESK in kept[2]["prompt"] and HELPDESK in kept[2]["completion"]
    payroll = kept[0]
    assert "<EMAIL_ADDRESS_1>" in payroll["prompt"] and "<PHONE_NUMBER_1>" in payroll["prompt"]
    assert is_house_format(payroll["completion"].removesuffix(END_OF_ANSWER), 1)  # the redacted example checks
    [(_, quote)] = parse_answer(payroll["completion"]).quotes
    assert "<EMAIL_ADDRESS_1>" in quote and quote in payroll["prompt"]  # the same placeholder in block and quote
    assert verbatim_up_to_placeholders(quote, f"Payroll questions go to Jordan Lee at {EMAIL} or {PHONE}.")

    seen = checked.stdout + checked.stderr + scrubbed.stdout + scrubbed.stderr + report_path(data).read_text()
    assert not [value for value in PLANTED if value in seen]  # found, counted, never printed


def test_planted_values_in_a_document_are_redacted_from_the_built_examples(
    settings: Settings, tiny_model: Path, allow_list: Path, tmp_path: Path
) -> None:
    corpus = tmp_path / "handbook"
    shutil.copytree(REPO / "samples" / "handbook", corpus)
    (corpus / "company" / "payroll-contacts.md").write_text(
        f"# Payroll contacts\n\nPayroll questions go to {EMAIL}; urgent ones to {PHONE}.\n", encoding="utf-8"
    )
    items = write_lines(
        tmp_path / "items.jsonl",
        [
            {
                "id": "pii-1",
                "doc_id": "company/payroll-contacts.md",
                "question": "Where do payroll questions go?",
                "answer": "To the payroll address.",
                "quotes": [f"Payroll questions go to {EMAIL}; urgent ones to {PHONE}."],
                "kind": "answerable",
            }
        ],
    )
    recipe = recipe_with(tiny_model, allow_list)
    recipe.data.sources = [ItemSource(str(items), str(corpus), "handbook")]
    recipe.data.min_blocks = recipe.data.max_blocks = 1
    recipe.data.no_oracle_share = 0.0
    with runtime(settings) as components:
        built = build(components, recipe, REPO)
    [example] = built.examples
    assert EMAIL in example.prompt  # the document's text, as retrieved
    path = tmp_path / "work" / "train.jsonl"
    report = Scrub.of(recipe, REPO, "recipe").apply(path, render_examples(built.examples))
    line = json.loads(path.read_text())
    assert EMAIL not in path.read_text() and PHONE not in path.read_text()
    assert "<EMAIL_ADDRESS_1>" in line["prompt"] and "<EMAIL_ADDRESS_1>" in line["completion"]
    assert line["sources"] == [s.to_json() for s in example.sources]  # provenance is never rewritten
    assert report.counts == {"EMAIL_ADDRESS": {"redact": 1}, "PHONE_NUMBER": {"redact": 1}}


def test_train_refuses_data_without_a_current_scan_report(tiny_model: Path, allow_list: Path, tmp_path: Path) -> None:
    recipe = recipe_with(tiny_model, allow_list)
    scrub = Scrub.of(recipe, REPO, "recipe.yaml")
    data = write_lines(tmp_path / "train.jsonl", hand_written()[:3])
    with pytest.raises(
        ConfigError, match=r"has no scan report \(train.scan.json\): run `assistant tune check .* --scrub"
    ):
        scrub.verify(data, data.read_bytes())
    scrub.apply(data)
    assert scrub.verify(data, data.read_bytes()).kept == 3
    with data.open("a", encoding="utf-8") as out:  # edited after its scan
        out.write(json.dumps(answered("Q?", f"Mail {EMAIL}.", "Mail [1].", "Mail")) + "\n")
    with pytest.raises(ConfigError, match="was made for other bytes"):
        scrub.verify(data, data.read_bytes())
    scrub.apply(data)
    stricter = Scrub.of(recipe_with(tiny_model, allow_list, personal="drop"), REPO, "recipe.yaml")
    with pytest.raises(ConfigError, match="under another scrub policy"):
        stricter.verify(data, data.read_bytes())
    report = json.loads(report_path(data).read_text())
    report["scanners"]["detect-secrets"] = "0.1"
    report_path(data).write_text(json.dumps(report))
    with pytest.raises(ConfigError, match=r"made with detect-secrets 0\.1, not 1"):
        scrub.verify(data, data.read_bytes())
    scrub.apply(data)
    # A report that vouches for the bytes, yet the text still holds a value to act on (written by hand): refused.
    raw = data.read_bytes().replace(b"<EMAIL_ADDRESS_1>", EMAIL.encode())
    data.write_bytes(raw)
    report = json.loads(report_path(data).read_text())
    report["sha256_after"] = hashlib.sha256(raw).hexdigest()
    report_path(data).write_text(json.dumps(report))
    with pytest.raises(ConfigError, match=r"train.jsonl:\d: holds EMAIL_ADDRESS that the scrub policy would redact"):
        scrub.verify(data, raw)


def test_bad_input_is_one_line_naming_the_file_and_line(
    tiny_model: Path, allow_list: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = recipe_with(tiny_model, allow_list)
    scrub = Scrub.of(recipe, REPO, "recipe.yaml")
    data = tmp_path / "train.jsonl"
    good = json.dumps(hand_written()[6]).encode()
    data.write_bytes(good + b"\n" + b'{"prompt": "caf\xe9"}\n')
    with pytest.raises(ConfigError, match=r"train.jsonl:2: the line is not UTF-8"):
        scrub.apply(data)
    assert data.read_bytes().startswith(good) and not report_path(data).exists()  # nothing written
    data.write_bytes(good + b"\n")

    def broken(text: str) -> list[object]:
        raise RuntimeError("recognizer crashed")

    monkeypatch.setattr(scrub.scanners, "find", broken)
    with pytest.raises(ConfigError, match=r"train.jsonl:1: a scanner failed on this line \(RuntimeError"):
        scrub.apply(data)
    monkeypatch.undo()
    for bad, message in (
        ({"actions": {"SHOE_SIZE": "redact"}}, "recipe.yaml: scrub: actions: unknown entity type 'SHOE_SIZE'"),
        ({"personal": "hide"}, "recipe.yaml: scrub: personal: unknown action 'hide'"),
        ({"actions": {"AWS_ACCESS_KEY": "redact"}}, "scrub: actions: AWS_ACCESS_KEY: a secret is never redacted"),
    ):
        with pytest.raises(ConfigError, match=message):
            Policy.of(ScrubRecipe(**bad), scanners(False), REPO, "recipe.yaml")  # type: ignore[arg-type]


def test_near_duplicates_through_lsh_are_those_of_comparing_every_pair() -> None:
    """The shipped items' questions, and the same with planted paraphrases (a word swapped or dropped): the LSH
    index finds exactly the pairs the quadratic rule finds."""
    questions = [item.question for item in load_items(HANDBOOK_ITEMS, "handbook")]
    rng = random.Random(7)
    planted = []
    for question in rng.sample(questions, 40):  # one word more (above the rule's 0.85 when long), one swapped
        tokens = question.split()
        planted.append(f"{question} today")
        tokens[rng.randrange(len(tokens))] = rng.choice(["the", "our", "a", "my"])
        planted.append(" ".join(tokens))
    for sets in ([words(q) for q in questions], [words(q) for q in questions + planted]):
        for threshold in (0.85, 0.7):
            lsh, pairwise = earlier_matches(sets, threshold), earlier_matches_pairwise(sets, threshold)
            assert lsh == pairwise
    assert sum(bool(m) for m in pairwise) >= 20  # the planted paraphrases are found: the comparison is not empty
