"""Alert rule files: YAML under the configured folders, validated by pydantic; errors name file and field.

A file holds ``rules: [...]``. Severity maps to ECS ``event.severity`` and ``event.risk_score`` with the
numbers Elastic's detection rules use (low 21, medium 47, high 73, critical 99:
https://www.elastic.co/guide/en/security/8.11/rules-ui-create.html#rule-ui-basic-params).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from forwarder.alerts.conditions import CONDITION_TAGS, Condition
from forwarder.errors import ConfigError
from forwarder.settings import Settings, parse_duration

SEVERITY = {"low": 21, "medium": 47, "high": 73, "critical": 99}
Severity = Literal["low", "medium", "high", "critical"]
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class Threshold(Settings):
    """``count`` matching events (or distinct values of ``distinct``) per group within one ``window``."""

    count: int = Field(ge=1, description="Fire when this many matching events are in one window.")
    window: timedelta = Field(description="Window length by event time (@timestamp), e.g. 5m.")
    group_by: list[str] = Field(
        default_factory=list, description="Fields that make a group, e.g. [user.name]."
    )
    distinct: str | None = Field(None, description="Count distinct values of this field instead of events.")
    hop: timedelta | None = Field(
        None,
        description="A new window starts every hop (window must be a multiple); default window/4, so any "
        "burst within 3/4 of a window is caught whole. hop = window: tumbling windows.",
    )

    @model_validator(mode="after")
    def _hop_divides_window(self) -> Threshold:
        if self.hop is not None and (self.hop.total_seconds() <= 0 or self.window % self.hop):
            raise ValueError("hop must be positive and divide window evenly")
        return self

    def hop_or_default(self) -> timedelta:
        """The hop: given, else a quarter of the window when that is a whole millisecond, else the window."""
        if self.hop is not None:
            return self.hop
        quarter = self.window / 4
        return quarter if quarter % timedelta(milliseconds=1) == timedelta(0) else self.window

    @field_validator("window")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("window must be at least 1s")
        return value


class Suppress(Settings):
    """Alerts with the same ``by`` values within ``for`` of a sent one are counted, not sent."""

    for_: timedelta = Field(
        alias="for", description="How long after an alert repeats are suppressed, e.g. 1h."
    )
    by: list[str] = Field(default_factory=list, description="Fields of the key (empty: the rule's group).")

    @model_validator(mode="before")
    @classmethod
    def _for_duration(cls, data: Any) -> Any:
        """``for`` is an alias, which the base class's ``5m`` parsing (by field name) does not see."""
        if isinstance(data, dict) and isinstance(data.get("for"), str):
            data = {**data, "for": parse_duration(data["for"])}
        return data


class RuleTest(Settings):
    """An embedded example: these documents, in order, must give ``alerts`` alerts of this rule."""

    name: str = Field(description="What the example shows.")
    events: list[dict[str, Any]] = Field(min_length=1, description="Normalised documents (ECS), in order.")
    alerts: int = Field(ge=0, description="How many alerts the rule must raise on them.")


class Rule(Settings):
    """One alert rule."""

    id: str = Field(description="Stable identifier (lower case, digits, . _ -); part of every alert id.")
    name: str = Field(description="Short title on-call engineers read.")
    description: str = Field(description="What it detects, why it matters and its source.")
    version: int = Field(1, ge=1, description="Bumped when the logic changes.")
    severity: Severity = Field(description="low, medium, high or critical.")
    enabled: bool = Field(True, description="false: loaded and tested, never evaluated.")
    type: Literal["match", "threshold"] = Field(description="match: every matching event; threshold: counts.")
    match: Condition = Field(description="Condition over ECS fields (all/any/not, field tests).")
    threshold: Threshold | None = Field(None, description="Required for type: threshold.")
    then: Condition | None = Field(
        None,
        description="Threshold rules only: a sequence. The count of match events arms the window; an event "
        "of the same group matching this condition (e.g. a successful login) fires the alert.",
    )
    occurrence: list[str] = Field(
        default_factory=lambda: ["event.id"],
        description="Fields that identify one occurrence: the same login seen on the stream and in an "
        "EventLogFile counts once when they agree, e.g. [@timestamp, user.name, source.ip].",
    )
    suppress: Suppress | None = Field(None, description="Repeat suppression.")
    category: list[str] = Field(default_factory=list, description="event.category of the alert.")
    event_type: list[str] = Field(default_factory=list, description="event.type of the alert.")
    message: str | None = Field(
        None, description="Alert text; {count}, {window}, {distinct_count} and {dotted.field} are filled in."
    )
    tests: list[RuleTest] = Field(
        default_factory=list, description="Embedded examples (sf-forwarder rules test)."
    )

    @field_validator("id")
    @classmethod
    def _stable_id(cls, value: str) -> str:
        if not _RULE_ID.fullmatch(value):
            raise ValueError("use 1-64 lower-case letters, digits, '.', '_' or '-'")
        return value

    @model_validator(mode="after")
    def _threshold_matches_type(self) -> Rule:
        if self.type == "threshold" and self.threshold is None:
            raise ValueError("type threshold needs a threshold: {count, window}")
        if self.type == "match" and (self.threshold is not None or self.then is not None):
            raise ValueError("type match takes no threshold or then")
        return self

    @property
    def risk_score(self) -> int:
        return SEVERITY[self.severity]


class RuleFile(Settings):
    rules: list[Rule] = Field(description="The rules of this file.")


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """``*.yaml``/``*.yml`` files of each folder (sorted), or the path itself when it is a file."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        else:
            files.append(path)
    return files


def load_rules(paths: Sequence[Path]) -> list[Rule]:
    """Every rule of every file; ``ConfigError`` lists each problem with its file and field path."""
    rules: list[Rule] = []
    first: dict[str, str] = {}
    for file in rule_files(paths):
        loaded = load_file(file)
        for index, rule in enumerate(loaded):
            if rule.id in first:
                raise ConfigError(
                    str(file),
                    [f"rules[{index}].id: duplicate rule id {rule.id!r} (also in {first[rule.id]})"],
                )
            first[rule.id] = str(file)
        rules += loaded
    return rules


def load_file(file: Path) -> list[Rule]:
    """The rules of one file."""
    name = str(file)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(name, [f"cannot read file: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(name, [f"{where}invalid YAML: {getattr(exc, 'problem', exc)}"]) from None
    return parse_rules(data, name)


def parse_rules(data: Any, file: str) -> list[Rule]:
    """Validate a loaded rule document."""
    try:
        return RuleFile.model_validate(data).rules
    except ValidationError as exc:
        raise ConfigError(file, [_describe(e) for e in exc.errors(include_url=False)]) from None


def _describe(error: Any) -> str:
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        msg = "unknown key"
    elif error["type"] == "missing":
        msg = "field required"
    return f"{_location(error['loc']) or '(top level)'}: {msg}"


def _location(loc: Sequence[int | str]) -> str:
    """``rules[0].match.all[1].equals``: pydantic's union tags (one after every condition) left out."""
    path, tag_next = "", False
    for part in loc:
        if tag_next and part in CONDITION_TAGS:
            tag_next = False
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        tag_next = part in ("match", "not") or (isinstance(part, int) and path.endswith(f"all[{part}]"))
        tag_next = tag_next or (isinstance(part, int) and path.endswith(f"any[{part}]"))
    return path
