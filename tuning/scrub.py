"""Personal data and secrets out of training text, before it can train (`tune build-data`, `tune check`, `tune
train`).

Every string of an example line but its provenance (question, blocks shown, answer, quotes, meta) is scanned by two
well-kept libraries, never by regexes of ours:
- presidio-analyzer's recognizers for personal data: e-mail, phone, IBAN, credit card, US SSN, IP address, and
  person names where a spaCy NER model is installed (without one, its pattern recognizers run alone: the report
  names the recognizers that ran);
- detect-secrets' plugins for secrets: cloud keys, private keys, JWTs, credentials in URLs, high-entropy strings,
  keyword secrets (`password = ...`) and the rest of its plugins.

The recipe's `scrub` section gives each entity type an action (`assistant/recipe.py`): `redact` replaces the value
with a typed placeholder (`<EMAIL_ADDRESS_1>`), the same one wherever the same value occurs in that example, so the
prompt's blocks, the answer and its quotes still agree; `drop` leaves the example out; `fail` leaves it out and
makes `tune train` refuse the data; `allow` keeps it. Values on the recipe's allow-list are kept whatever their
type. The report (`ScanReport`, written beside the data as `<name>.scan.json` and kept in the adapter's record)
counts what was found by type and action, per example line, with the scanners and their versions, the policy and
the sha256 of the data before and after: never a value found.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.house_format import fold
from assistant.recipe import Recipe, ScrubRecipe
from tuning.provenance import LineRefused, learned_strings, numbered_lines, record_of_line

ACTIONS = ("redact", "drop", "fail", "allow")
STRICTNESS = ("allow", "redact", "drop", "fail")  # a value named by several types takes the last of their actions
PERSONAL, SECRET = "personal", "secret"
# presidio's predefined recognizers the scan runs (class name: entity type); each exists in presidio-analyzer 2.2.
PRESIDIO_RECOGNIZERS = {
    "EmailRecognizer": "EMAIL_ADDRESS",
    "PhoneRecognizer": "PHONE_NUMBER",
    "IbanRecognizer": "IBAN_CODE",
    "CreditCardRecognizer": "CREDIT_CARD",
    "UsSsnRecognizer": "US_SSN",
    "IpRecognizer": "IP_ADDRESS",
}
PERSON = "PERSON"  # found only by a spaCy NER model
SEEN_LINES = 200_000  # distinct lines whose findings a process keeps (then starts again)
NER_MODELS = ("en_core_web_trf", "en_core_web_lg", "en_core_web_md", "en_core_web_sm")  # the first installed one
PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d+)>")
PLACEHOLDER_SPAN = 120  # the longest value a placeholder stands for when a quote is matched with its block
REPORT_SUFFIX = ".scan.json"
VERBS = {"redacted": "redact", "dropped": "drop", "failed": "fail on"}  # a line's outcome, as the policy's verb


@dataclass(frozen=True)
class Finding:
    kind: str  # the entity type, e.g. EMAIL_ADDRESS or AWS_ACCESS_KEY (its family: `Scanners.types`)
    value: str  # the text found: used to act on it, never written anywhere


class Scanners:
    """The two libraries, loaded once: presidio's recognizers and detect-secrets' plugins."""

    def __init__(self, ner: bool = True) -> None:
        # presidio's e-mail check reads the public suffix list through tldextract, which would fetch it: the
        # snapshot inside the wheel is used instead (nothing downloads at run time; a setting of your own wins).
        os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
        from detect_secrets.settings import default_settings, get_plugins
        from presidio_analyzer import predefined_recognizers

        self._recognizers = [getattr(predefined_recognizers, name)() for name in PRESIDIO_RECOGNIZERS]
        self._nlp: Any = None
        self.ner_model: str | None = None
        if ner:
            self._nlp, self.ner_model = _ner_engine()
        if self._nlp is not None:
            self._recognizers.append(predefined_recognizers.SpacyRecognizer(supported_entities=[PERSON]))
        with default_settings():  # every plugin detect-secrets ships, at its default limits
            self._plugins = {plugin.secret_type: plugin for plugin in get_plugins()}
        self.secret_types = tuple(sorted({_secret_type(name) for name in self._plugins}))
        self._seen: dict[str, tuple[Finding, ...]] = {}  # line -> what it holds

    @property
    def personal_types(self) -> tuple[str, ...]:
        return (*PRESIDIO_RECOGNIZERS.values(), *((PERSON,) if self.ner_model else ()))

    @property
    def types(self) -> dict[str, str]:
        """Every entity type these scanners can report, with its family."""
        return {**dict.fromkeys(self.personal_types, PERSONAL), **dict.fromkeys(self.secret_types, SECRET)}

    def versions(self) -> dict[str, Any]:
        """What ran, for the report: libraries and versions, recognizers, plugins, the NER model (or none)."""
        return {
            "presidio-analyzer": metadata.version("presidio-analyzer"),
            "detect-secrets": metadata.version("detect-secrets"),
            "recognizers": [type(r).__name__ for r in self._recognizers],
            "plugins": sorted(self.secret_types),
            "ner_model": self.ner_model,
        }

    def find(self, text: str) -> list[Finding]:
        """Every value found in `text`, line by line: no value spans lines, and the lines of the blocks repeat
        across examples (the same chunk is shown in many), so each distinct line is scanned once a process."""
        from detect_secrets.settings import default_settings

        found: list[Finding] = []
        with default_settings():  # every plugin at its default limits (entered once: it resets their caches)
            for line in text.splitlines():
                if line.strip():
                    if line not in self._seen:
                        if len(self._seen) > SEEN_LINES:
                            self._seen.clear()
                        self._seen[line] = (*self._personal(line), *self._secrets(line))
                    found += self._seen[line]
        return found

    def _personal(self, line: str) -> Iterator[Finding]:
        artifacts = self._nlp.process_text(line, "en") if self._nlp is not None else None
        for recognizer in self._recognizers:  # every match counts, as presidio's analyzer does by default
            for result in recognizer.analyze(line, recognizer.supported_entities, artifacts) or []:
                yield Finding(result.entity_type, line[result.start : result.end])

    def _secrets(self, line: str) -> Iterator[Finding]:
        """detect-secrets' ad hoc scan of the line (unquoted values too: a key pasted into prose), with each
        high-entropy plugin's own limit applied, as its file scan does."""
        from detect_secrets.core.scan import scan_line

        for secret in scan_line(line):
            plugin, value = self._plugins[secret.type], secret.secret_value
            if not value:
                continue
            entropy_limit = getattr(plugin, "entropy_limit", None)
            if entropy_limit is not None and plugin.calculate_shannon_entropy(value) <= entropy_limit:
                continue
            yield Finding(_secret_type(secret.type), value)


def _secret_type(name: str) -> str:
    """detect-secrets' type name as an entity type: "AWS Access Key" -> AWS_ACCESS_KEY."""
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")


def _ner_engine() -> tuple[Any, str | None]:
    """presidio's spaCy engine with the first installed NER model, or (None, None): none is installed, and nothing
    is ever downloaded."""
    from importlib.util import find_spec

    model = next((name for name in NER_MODELS if find_spec(name) is not None), None)
    if model is None:
        return None, None
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    config = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
    return NlpEngineProvider(nlp_configuration=config).create_engine(), f"{model} {metadata.version(model)}"


def _comparable(value: str) -> str:
    """A value as the allow-list compares it: case, spaces and a phone number's punctuation aside."""
    return re.sub(r"[\s().\-]", "", value.casefold())


@dataclass(frozen=True)
class Policy:
    """The action for every entity type the scanners know, and the values allowed by name."""

    actions: dict[str, str]
    allowed: frozenset[str] = field(repr=False)
    allow_list_sha256: str | None = None

    @classmethod
    def of(cls, scrub: ScrubRecipe, scanners: Scanners, repo: Path, where: str = "recipe") -> Policy:
        """The recipe's policy over these scanners; an unknown action, entity type or allow-list file is one
        ConfigError naming `where` and the field."""
        for name, action in [("personal", scrub.personal), ("secrets", scrub.secrets), *scrub.actions.items()]:
            if action not in ACTIONS:
                raise ConfigError(f"{where}: scrub: {name}: unknown action {action!r}; use one of {', '.join(ACTIONS)}")
        known = scanners.types
        unknown = sorted(set(scrub.actions) - set(known) - {PERSON})
        if unknown:
            raise ConfigError(
                f"{where}: scrub: actions: unknown entity type {unknown[0]!r}; the scanners know {', '.join(known)}"
            )
        defaults = {PERSONAL: scrub.personal, SECRET: scrub.secrets}
        actions = {kind: scrub.actions.get(kind, defaults[family]) for kind, family in sorted(known.items())}
        redacted = sorted(kind for kind, action in actions.items() if action == "redact" and known[kind] == SECRET)
        if redacted:  # a plugin's match can be part of the secret (a private key's header, a keyword's value)
            name = "secrets" if scrub.secrets == "redact" else f"actions: {redacted[0]}"
            raise ConfigError(
                f"{where}: scrub: {name}: a secret is never redacted (what a plugin matches may be only part of "
                "it); use drop, fail or allow"
            )
        allowed: frozenset[str] = frozenset()
        digest: str | None = None
        if scrub.allow_list:
            path = repo / scrub.allow_list
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise ConfigError(f"{where}: scrub: allow_list: {path} cannot be read ({exc.strerror})") from None
            lines = (line.strip() for line in raw.decode("utf-8", errors="replace").splitlines())
            allowed = frozenset(_comparable(line) for line in lines if line and not line.startswith("#"))
            digest = hashlib.sha256(raw).hexdigest()
        return cls(actions, allowed, digest)

    def action(self, finding: Finding) -> str:
        return "allow" if _comparable(finding.value) in self.allowed else self.actions.get(finding.kind, "fail")

    def digest(self) -> str:
        """What a report was made under: a report of another policy does not vouch for the data."""
        body = json.dumps({"actions": self.actions, "allow_list": self.allow_list_sha256}, sort_keys=True)
        return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {"actions": self.actions, "allow_list_sha256": self.allow_list_sha256, "digest": self.digest()}


@dataclass
class LineScan:
    line: int  # in the file as scanned
    found: dict[str, int]  # entity type -> values found
    outcome: str  # kept, redacted, dropped, failed


@dataclass
class ScanReport:
    """What a scan found and did, by counts: never a value."""

    file: str
    policy: dict[str, Any]
    scanners: dict[str, Any]
    sha256_before: str
    sha256_after: str
    examples: int = 0
    kept: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # entity type -> action -> values
    lines: list[LineScan] = field(default_factory=list)  # only the lines where something was found
    unscanned: list[int] = field(default_factory=list)  # lines not read (not UTF-8, not JSON): `tune check` only

    @property
    def dropped(self) -> int:
        return sum(line.outcome in ("dropped", "failed") for line in self.lines)

    @property
    def failed(self) -> list[LineScan]:
        return [line for line in self.lines if line.outcome == "failed"]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "dropped": self.dropped}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScanReport:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["lines"] = [LineScan(**line) for line in data.get("lines", [])]
        return cls(**fields)

    def summary(self) -> str:
        found = sum(sum(by_action.values()) for by_action in self.counts.values())
        return (
            f"{self.file}: {self.examples} examples scanned, {found} values found, {self.kept} examples kept, "
            f"{self.dropped} left out ({len(self.failed)} holding a secret the policy fails on)"
        )


@dataclass(frozen=True)
class Scrubbed:
    raw: bytes  # the file after the policy
    report: ScanReport


def scrub_file(path: Path, raw: bytes, scanners: Scanners, policy: Policy, *, strict: bool = True) -> Scrubbed:
    """Apply `policy` to every example line of `raw` (the bytes of `path`). A line that is not UTF-8 or not JSON,
    or that a scanner fails on, is one ConfigError naming the file and line (nothing is half scrubbed); with
    `strict` off (`tune check`, which reports such lines itself) it is left out and listed as unscanned."""
    report = ScanReport(path.name, policy.to_json(), scanners.versions(), hashlib.sha256(raw).hexdigest(), "")
    kept: list[str] = []
    for number, line in numbered_lines(raw):
        report.examples += 1
        try:
            outcome, scrubbed, found = _scrub_line(path, number, line, scanners, policy)
        except ConfigError:
            if strict:
                raise
            report.unscanned.append(number)
            continue
        for kind, actions in found.items():
            for action, n in actions.items():
                by_action = report.counts.setdefault(kind, {})
                by_action[action] = by_action.get(action, 0) + n
        if found:
            report.lines.append(LineScan(number, {k: sum(a.values()) for k, a in found.items()}, outcome))
        if outcome in ("kept", "redacted"):
            report.kept += 1
            kept.append(json.dumps(scrubbed, ensure_ascii=False) if outcome == "redacted" else str(line))
    after = "".join(f"{line}\n" for line in kept).encode("utf-8")
    report.sha256_after = hashlib.sha256(after).hexdigest()
    return Scrubbed(after, report)


def _scrub_line(
    path: Path, number: int, line: str | None, scanners: Scanners, policy: Policy
) -> tuple[str, dict[str, Any], dict[str, dict[str, int]]]:
    try:
        record = record_of_line(line)
    except LineRefused as exc:
        raise ConfigError(f"{path}:{number}: {exc}; nothing was scanned into training data") from None
    try:
        return scrub_record(record, scanners, policy)
    except Exception as exc:  # a scanner's own failure: this line is not known to be clean
        raise ConfigError(  # the exception's type only: its message may quote the line
            f"{path}:{number}: a scanner failed on this line ({type(exc).__name__}); nothing was written"
        ) from None


def scrub_record(
    record: dict[str, Any], scanners: Scanners, policy: Policy
) -> tuple[str, dict[str, Any], dict[str, dict[str, int]]]:
    """(outcome, the record after the policy, entity type -> action -> distinct values) of one example. A value
    named by several types counts under each, and takes the strictest of their actions (a key that also looks like
    a phone number is a secret)."""
    kinds: dict[str, list[Finding]] = {}  # value -> every finding that named it
    for text in learned_strings(record):
        for finding in scanners.find(text):
            if finding.value.strip() and not PLACEHOLDER.fullmatch(finding.value.strip()):
                named = kinds.setdefault(finding.value, [])
                if all(f.kind != finding.kind for f in named):
                    named.append(finding)
    actions = {value: max((policy.action(f) for f in named), key=STRICTNESS.index) for value, named in kinds.items()}
    found: dict[str, dict[str, int]] = {}
    for value, named in kinds.items():
        for f in named:
            by_action = found.setdefault(f.kind, {})
            by_action[actions[value]] = by_action.get(actions[value], 0) + 1
    if "fail" in actions.values():
        return "failed", record, found
    if "drop" in actions.values():
        return "dropped", record, found
    redact = [value for value, action in actions.items() if action == "redact"]
    if not redact:
        return "kept", record, found
    names = _placeholders(record, {value: kinds[value][0].kind for value in redact})
    return "redacted", _replaced(record, names), found


def _placeholders(record: dict[str, Any], kinds: dict[str, str]) -> dict[str, str]:
    """value -> <KIND_n>, numbered per type in order of first appearance in the line, after any number of that
    type the line already holds (a line scrubbed before keeps its placeholders distinct)."""
    text = "\n".join(learned_strings(record))
    numbers: Counter[str] = Counter()
    for kind, number in PLACEHOLDER.findall(text):
        numbers[kind] = max(numbers[kind], int(number))
    names = {}
    for value in sorted(kinds, key=lambda value: (text.find(value), -len(value))):
        numbers[kinds[value]] += 1
        names[value] = f"<{kinds[value]}_{numbers[kinds[value]]}>"
    return names


def _replaced(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for found in sorted(names, key=len, reverse=True):  # a longer value first: it may hold a shorter one
            value = value.replace(found, names[found])
        return value
    if isinstance(value, dict):
        return {key: inner if key == "sources" else _replaced(inner, names) for key, inner in value.items()}
    if isinstance(value, list):
        return [_replaced(inner, names) for inner in value]
    return value


def report_path(data_file: Path) -> Path:
    return data_file.with_name(data_file.stem + REPORT_SUFFIX)


def write_report(data_file: Path, report: ScanReport) -> Path:
    path = report_path(data_file)
    path.write_text(json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8")
    return path


def current_report(data_file: Path, raw: bytes, scanners: Scanners, policy: Policy, fix: str) -> ScanReport:
    """The scan report that vouches for `raw` (the bytes of `data_file`) under `policy` and these scanners, or one
    ConfigError saying what is missing or stale (`fix`: the command that makes a current one)."""
    path = report_path(data_file)
    if not path.is_file():
        raise ConfigError(f"{data_file} has no scan report ({path.name}): run `{fix}`")
    try:
        report = ScanReport.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{path} is not a scan report ({exc}): run `{fix}`") from None
    if report.sha256_after != hashlib.sha256(raw).hexdigest():
        raise ConfigError(f"{path} was made for other bytes than {data_file} holds now: run `{fix}`")
    if report.policy.get("digest") != policy.digest():
        raise ConfigError(f"{path} was made under another scrub policy than the recipe's: run `{fix}`")
    now = scanners.versions()
    for key in ("presidio-analyzer", "detect-secrets", "ner_model"):
        if report.scanners.get(key) != now[key]:
            raise ConfigError(
                f"{path} was made with {key} {report.scanners.get(key)}, not {now[key]} as installed: run `{fix}`"
            )
    if report.failed:
        lines = ", ".join(str(line.line) for line in report.failed[:5])
        kinds = sorted({kind for line in report.failed for kind in line.found})
        raise ConfigError(
            f"{path}: {len(report.failed)} example(s) held a secret ({', '.join(kinds)}; line(s) {lines} of the "
            "data before scrubbing): take it out of the source document, or allow the value or its type in the "
            "recipe's scrub section"
        )
    return report


@lru_cache(maxsize=2)
def scanners(ner: bool) -> Scanners:
    """The scanners, loaded once a process (presidio's recognizers and a NER model take seconds to build)."""
    return Scanners(ner)


@dataclass(frozen=True)
class Scrub:
    """A recipe's scrub policy over the installed scanners, as `tune build-data`, `tune check` and `tune train`
    apply it."""

    scanners: Scanners
    policy: Policy
    recipe_path: str  # for the command lines that error messages give

    @classmethod
    def of(cls, recipe: Recipe, repo: Path, recipe_path: str) -> Scrub:
        found = scanners(recipe.scrub.ner)
        return cls(found, Policy.of(recipe.scrub, found, repo, recipe_path), recipe_path)

    def fix(self, data_file: Path) -> str:
        return f"assistant tune check {data_file} --scrub --recipe {self.recipe_path}"

    def apply(self, data_file: Path, raw: bytes | None = None) -> ScanReport:
        """Scrub `data_file` (or `raw`, its bytes still to be written) in place and write its report beside it."""
        return self.apply_all({data_file: data_file.read_bytes() if raw is None else raw})[data_file]

    def apply_all(self, files: dict[Path, bytes]) -> dict[Path, ScanReport]:
        """Scrub every file's bytes in memory, then write them all with their reports: a failure on any file
        writes none."""
        scrubbed = {path: scrub_file(path, raw, self.scanners, self.policy) for path, raw in files.items()}
        for path, done in scrubbed.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(done.raw)
            write_report(path, done.report)
        return {path: done.report for path, done in scrubbed.items()}

    def scan(self, data_file: Path, raw: bytes, *, strict: bool = False) -> ScanReport:
        """What applying the policy to `raw` would find and do, writing nothing (lines it cannot read are listed
        as unscanned unless `strict`)."""
        return scrub_file(data_file, raw, self.scanners, self.policy, strict=strict).report

    def verify(self, data_file: Path, raw: bytes) -> ScanReport:
        """The report vouching for `raw` (the bytes training read from `data_file`), after scanning it again: any
        value the policy would still act on refuses the data, naming the line (never the value)."""
        report = current_report(data_file, raw, self.scanners, self.policy, self.fix(data_file))
        left = [line for line in self.scan(data_file, raw, strict=True).lines if line.outcome != "kept"]
        if left:
            first = left[0]
            raise ConfigError(
                f"{data_file}:{first.line}: holds {', '.join(sorted(first.found))} that the scrub policy would "
                f"{VERBS[first.outcome]} "
                f"({len(left)} line(s) in all): run `{self.fix(data_file)}`"
            )
        return report


def verbatim_up_to_placeholders(quote: str, text: str) -> bool:
    """`quote` is in `text` (whitespace and case aside), each placeholder in it standing for one value of up to
    `PLACEHOLDER_SPAN` characters: a redacted quote still matches its block, redacted or not. A quote of nothing
    but placeholders must be in the text as it is. Training data only: at run time a quote is checked exactly
    against the retrieved text, which holds no placeholders."""
    pieces = [fold(piece) for piece in PLACEHOLDER.split(quote)[::3]]  # split keeps the pattern's two groups
    if not "".join(pieces).strip():
        return fold(quote) in fold(text)
    wildcard = f".{{1,{PLACEHOLDER_SPAN}}}?"
    return re.search(wildcard.join(re.escape(piece) for piece in pieces), fold(text)) is not None
