"""The experiment form: HTML form fields <-> the API's experiment document. Pure, no I/O.

Field names are the API's dotted problem names (``coverage``, ``targeting.segments``,
``variants[1].changes.shown``), so a validation problem lands next to the input it names,
whether it comes from this parser, `fragments.experiments`, or the service.

`ExperimentFields` holds what the marketer typed, as strings, so a page re-rendered after an
error shows their input unchanged. `to_document` converts it to the JSON document the API
accepts (and `experiment_from_dict` reads), collecting a problem per unreadable field. Dates are
``datetime-local`` values in UTC. Targeting conditions are lines of ``attribute op value``;
guardrails are lines of ``metric max-drop-percent`` (``add_to_cart 5``); a variant's label rule
is lines of ``custom_label_N: value, value`` (include, exclude) and ``custom_label_N: value
factor`` (boost); the minimum detectable effect and guardrail drops are typed in percent and
stored as fractions.
It never decides what is valid beyond "can this be read": that is `fragments.experiments`.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from fragments.experiments import (
    ATTRIBUTE_OPS,
    ATTRIBUTES,
    SCORING_FIELDS,
    Analysis,
    Experiment,
)
from fragments.ids import CONTROL_VARIANT
from fragments.labels import LABEL_NAMES, LabelRule

DEVICES = ("desktop", "mobile")
"""The device classes the edge tells apart (see ``edge.context``)."""
MAX_VARIANTS = 8
DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
_VARIANT_FIELD = re.compile(r"variants\[(\d+)\]\.(.+)")
_SPLIT = re.compile(r"[,\s]+")


_ANALYSIS = Analysis()
"""The analysis settings of a new experiment."""


def _percent_text(fraction: float) -> str:
    return f"{fraction * 100:.4g}"


@dataclass(frozen=True, slots=True)
class VariantFields:
    """One variant row, as typed."""

    id: str = ""
    name: str = ""
    weight: str = ""
    wrapper_template: str = ""
    card_template: str = ""
    scoring: Mapping[str, str] = field(default_factory=lambda: dict.fromkeys(SCORING_FIELDS, ""))
    """Scoring exponent overrides by name (empty: control's)."""
    shown: str = ""
    recency_boost: str = ""
    price_floor: str = ""
    origin_rendered: bool = False
    labels_include: str = ""
    """Lines of ``custom_label_N: value, value``: only products with one of those values."""
    labels_exclude: str = ""
    """Lines of ``custom_label_N: value, value``: never products with one of those values."""
    labels_boost: str = ""
    """Lines of ``custom_label_N: value factor``: a matching product's score times factor."""


@dataclass(frozen=True, slots=True)
class ExperimentFields:
    """The whole form, as typed (strings; tuples for checkbox groups)."""

    key: str = ""
    name: str = ""
    status: str = "draft"
    version: str = "1"
    slots: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    countries: str = ""
    devices: tuple[str, ...] = ()
    path_patterns: str = ""
    conditions: str = ""
    coverage: str = "1"
    holdout: str = "0"
    namespace_id: str = ""
    namespace_start: str = ""
    namespace_end: str = ""
    hash_version: str = "2"
    hash_seed: str = ""
    bucket_version: str = "0"
    starts_at: str = ""
    ends_at: str = ""
    variants: tuple[VariantFields, ...] = ()
    primary_metric: str = _ANALYSIS.primary_metric
    guardrails: str = ""
    """Lines of ``metric max-drop-percent``."""
    correction: str = _ANALYSIS.correction
    minimum_visitors: str = str(_ANALYSIS.minimum_visitors)
    cuped: bool = _ANALYSIS.cuped
    mde: str = _percent_text(_ANALYSIS.mde)
    """Minimum detectable effect, in percent."""


def blank() -> ExperimentFields:
    """A new experiment: control and one challenger at 50/50, everyone eligible."""
    return ExperimentFields(
        variants=(
            VariantFields(id=CONTROL_VARIANT, name="Control", weight="0.5"),
            VariantFields(id="challenger", name="Challenger", weight="0.5"),
        )
    )


def from_experiment(e: Experiment) -> ExperimentFields:
    """The form showing a stored experiment."""
    t = e.targeting
    return ExperimentFields(
        key=e.key,
        name=e.name,
        status=e.status,
        version=str(e.version),
        slots=e.slots,
        segments=t.segments,
        countries=", ".join(t.countries),
        devices=t.devices,
        path_patterns="\n".join(t.path_patterns),
        conditions="\n".join(
            f"{c.attribute} {c.op} {_condition_value(c.value)}" for c in t.conditions
        ),
        coverage=_num(e.coverage),
        holdout=_num(e.holdout),
        namespace_id=e.namespace.id if e.namespace else "",
        namespace_start=_num(e.namespace.start) if e.namespace else "",
        namespace_end=_num(e.namespace.end) if e.namespace else "",
        hash_version=str(e.hash_version),
        hash_seed=e.hash_seed,
        bucket_version=str(e.bucket_version),
        starts_at=_datetime_text(e.starts_at),
        ends_at=_datetime_text(e.ends_at),
        primary_metric=e.analysis.primary_metric,
        guardrails="\n".join(
            f"{g.metric} {_percent_text(g.max_drop)}" for g in e.analysis.guardrails
        ),
        correction=e.analysis.correction,
        minimum_visitors=str(e.analysis.minimum_visitors),
        cuped=e.analysis.cuped,
        mde=_percent_text(e.analysis.mde),
        variants=tuple(
            VariantFields(
                id=v.id,
                name=v.name,
                weight=_num(v.weight),
                wrapper_template=v.changes.wrapper_template or "",
                card_template=v.changes.card_template or "",
                scoring={
                    name: _num((v.changes.scoring or {}).get(name)) for name in SCORING_FIELDS
                },
                shown="" if v.changes.shown is None else str(v.changes.shown),
                recency_boost=_num(v.changes.recency_boost),
                price_floor=_num(v.changes.price_floor),
                origin_rendered=v.changes.origin_rendered,
                **_label_fields(v.changes.labels),
            )
            for v in e.variants
        ),
    )


def from_form(pairs: Iterable[tuple[str, str]]) -> ExperimentFields:
    """The fields of a posted form's (name, value) pairs (unknown names are ignored; variant
    rows keep their index order; for repeated names of single fields the first wins)."""
    single: dict[str, str] = {}
    many: dict[str, list[str]] = {}
    rows: dict[int, dict[str, str]] = {}
    for name, value in pairs:
        single.setdefault(name, value)
        many.setdefault(name, []).append(value)
        match = _VARIANT_FIELD.fullmatch(name)
        if match is not None and int(match.group(1)) < MAX_VARIANTS:
            rows.setdefault(int(match.group(1)), {}).setdefault(match.group(2), value)

    def one(key: str, default: str = "") -> str:
        return single.get(key, default)

    def every(key: str) -> tuple[str, ...]:
        return tuple(many.get(key, ()))

    return ExperimentFields(
        key=one("key").strip(),
        name=one("name"),
        status=one("status", "draft"),
        version=one("version", "1"),
        slots=every("slots"),
        segments=every("targeting.segments"),
        countries=one("targeting.countries"),
        devices=every("targeting.devices"),
        path_patterns=one("targeting.path_patterns"),
        conditions=one("targeting.conditions"),
        coverage=one("coverage"),
        holdout=one("holdout"),
        namespace_id=one("namespace.id").strip(),
        namespace_start=one("namespace.start"),
        namespace_end=one("namespace.end"),
        hash_version=one("hash_version", "2"),
        hash_seed=one("hash_seed").strip(),
        bucket_version=one("bucket_version", "0"),
        starts_at=one("starts_at"),
        ends_at=one("ends_at"),
        variants=tuple(_variant_row(rows[i]) for i in sorted(rows)),
        primary_metric=one("analysis.primary_metric", _ANALYSIS.primary_metric),
        guardrails=one("analysis.guardrails"),
        correction=one("analysis.correction", _ANALYSIS.correction),
        minimum_visitors=one("analysis.minimum_visitors", str(_ANALYSIS.minimum_visitors)),
        cuped=one("analysis.cuped", "") in ("1", "on", "true"),
        mde=one("analysis.mde", _percent_text(_ANALYSIS.mde)),
    )


def _variant_row(row: Mapping[str, str]) -> VariantFields:
    return VariantFields(
        id=row.get("id", "").strip(),
        name=row.get("name", ""),
        weight=row.get("weight", ""),
        wrapper_template=row.get("changes.wrapper_template", ""),
        card_template=row.get("changes.card_template", ""),
        scoring={name: row.get(f"changes.scoring.{name}", "") for name in SCORING_FIELDS},
        shown=row.get("changes.shown", ""),
        recency_boost=row.get("changes.recency_boost", ""),
        price_floor=row.get("changes.price_floor", ""),
        origin_rendered=row.get("changes.origin_rendered", "") in ("1", "on", "true"),
        labels_include=row.get("changes.labels.include", ""),
        labels_exclude=row.get("changes.labels.exclude", ""),
        labels_boost=row.get("changes.labels.boost", ""),
    )


def with_variant_added(f: ExperimentFields) -> ExperimentFields:
    """One more (empty) challenger row, up to `MAX_VARIANTS`."""
    if len(f.variants) >= MAX_VARIANTS:
        return f
    return replace(f, variants=(*f.variants, VariantFields(weight="0")))


def with_variant_removed(f: ExperimentFields, index: int) -> ExperimentFields:
    """Without row `index` (control, row 0, stays)."""
    if not 0 < index < len(f.variants):
        return f
    return replace(f, variants=f.variants[:index] + f.variants[index + 1 :])


def to_document(f: ExperimentFields) -> tuple[dict[str, Any], dict[str, str]]:
    """The API document of the form, and a problem per field that cannot be read."""
    problems: dict[str, str] = {}
    reader = _Numbers(problems)
    doc: dict[str, Any] = {
        "key": f.key,
        "name": f.name,
        "status": f.status,
        "slots": list(f.slots),
        "targeting": {
            "segments": list(f.segments),
            "countries": [c.upper() for c in _SPLIT.split(f.countries) if c],
            "devices": list(f.devices),
            "path_patterns": [p.strip() for p in re.split(r"[\n,]", f.path_patterns) if p.strip()],
            "conditions": _conditions(f.conditions, problems),
        },
        "coverage": reader.number("coverage", f.coverage, required=True),
        "holdout": reader.number("holdout", f.holdout, default=0.0),
        "hash_version": reader.integer("hash_version", f.hash_version, default=2),
        "hash_seed": f.hash_seed,
        "bucket_version": reader.integer("bucket_version", f.bucket_version, default=0),
        "namespace": None,
        "starts_at": _timestamp("starts_at", f.starts_at, problems),
        "ends_at": _timestamp("ends_at", f.ends_at, problems),
        "version": reader.integer("version", f.version, default=1),
        "variants": [_variant_doc(i, v, reader) for i, v in enumerate(f.variants)],
        "analysis": {
            "primary_metric": f.primary_metric,
            "guardrails": _guardrails(f.guardrails, problems),
            "correction": f.correction,
            "minimum_visitors": reader.integer(
                "analysis.minimum_visitors", f.minimum_visitors, default=_ANALYSIS.minimum_visitors
            ),
            "cuped": f.cuped,
            "mde": reader.number("analysis.mde", f.mde, default=_ANALYSIS.mde * 100) / 100,
        },
    }
    if f.namespace_id or f.namespace_start.strip() or f.namespace_end.strip():
        if not f.namespace_id:
            problems["namespace.id"] = "name the namespace (or clear its range)"
        doc["namespace"] = {
            "id": f.namespace_id,
            "start": reader.number("namespace.start", f.namespace_start, default=0.0),
            "end": reader.number("namespace.end", f.namespace_end, default=1.0),
        }
    return doc, problems


def _variant_doc(i: int, v: VariantFields, reader: _Numbers) -> dict[str, Any]:
    where = f"variants[{i}]"
    changes: dict[str, Any] = {}
    if v.wrapper_template:
        changes["wrapper_template"] = v.wrapper_template
    if v.card_template:
        changes["card_template"] = v.card_template
    scoring = {
        name: reader.number(f"{where}.changes.scoring.{name}", raw)
        for name, raw in v.scoring.items()
        if raw.strip()
    }
    if scoring:
        changes["scoring"] = scoring
    for name, raw in (
        ("recency_boost", v.recency_boost),
        ("price_floor", v.price_floor),
    ):
        if raw.strip():
            changes[name] = reader.number(f"{where}.changes.{name}", raw)
    if v.shown.strip():
        changes["shown"] = reader.integer(f"{where}.changes.shown", v.shown)
    if v.origin_rendered:
        changes["origin_rendered"] = True
    labels = _labels_doc(f"{where}.changes.labels", v, reader.problems)
    if labels:
        changes["labels"] = labels
    return {
        "id": v.id,
        "name": v.name.strip() or v.id,
        "weight": reader.number(f"{where}.weight", v.weight, required=True),
        "changes": changes,
    }


def _label_fields(rule: LabelRule | None) -> dict[str, str]:
    """A variant's label rule as the form's three text areas."""
    if rule is None:
        return {}
    return {
        "labels_include": "\n".join(
            f"{LABEL_NAMES[i]}: {_joined(sorted(values))}" for i, values in rule.include
        ),
        "labels_exclude": "\n".join(
            f"{LABEL_NAMES[i]}: {_joined(sorted(values))}" for i, values in rule.exclude
        ),
        "labels_boost": "\n".join(
            f"{LABEL_NAMES[b.label]}: {b.value} {_num(b.factor)}" for b in rule.boosts
        ),
    }


def _labels_doc(where: str, v: VariantFields, problems: dict[str, str]) -> dict[str, Any]:
    """The API's ``changes.labels`` of a variant row (empty: no label rule). Only the line
    syntax is checked here; label names and values are `fragments.labels`' to judge."""
    doc: dict[str, Any] = {}
    for part, text in (("include", v.labels_include), ("exclude", v.labels_exclude)):
        values: dict[str, list[str]] = {}
        for line in _lines(text):
            name, sep, rest = line.partition(":")
            listed = [value.strip() for value in _split(rest) if value.strip()]
            if not sep or not listed:
                problems[f"{where}.{part}"] = (
                    f"{line[:40]!r}: write one label a line, 'custom_label_0: summer, clearance'"
                )
                continue
            values.setdefault(name.strip(), []).extend(listed)
        if values:
            doc[part] = values
    boosts: list[dict[str, Any]] = []
    for line in _lines(v.labels_boost):
        name, sep, rest = line.partition(":")
        value, _, factor = rest.strip().rpartition(" ")
        number = _float(factor)
        if not sep or not value.strip() or number is None:
            problems[f"{where}.boost"] = (
                f"{line[:40]!r}: write one boost a line, 'custom_label_0: bestseller 1.5'"
            )
            continue
        boosts.append({name.strip(): value.strip(), "factor": number})
    if boosts:
        doc["boost"] = boosts
    return doc


def _joined(values: Iterable[str]) -> str:
    """Values separated by commas, one holding a comma or a quote in double quotes (`_split`
    reads them back as they were)."""
    return ", ".join(_quoted(value) for value in values)


def _quoted(value: str) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([value])
    return out.getvalue()


def _split(text: str) -> list[str]:
    """Comma-separated values; ``"sale, 20%"`` (double quotes) is one value."""
    return next(csv.reader([text.strip()], skipinitialspace=True), [])


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _float(text: str) -> float | None:
    """A finite number typed as `_decimal` reads it, else None."""
    try:
        value = _decimal(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _decimal(text: str) -> float:
    """`float` of what was typed, a decimal comma (as in many locales) read as a point."""
    return float(text.replace(",", ".") if "," in text and "." not in text else text)


class _Numbers:
    """Reads numbers typed into the form, recording a problem per unreadable one."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems

    def number(self, name: str, raw: str, *, default: float = 0.0, required: bool = False) -> float:
        text = raw.strip()
        if not text:
            if required:
                self.problems[name] = "enter a number"
            return default
        try:
            value = _decimal(text)
        except ValueError:
            self.problems[name] = f"{raw.strip()[:20]!r} is not a number"
            return default
        if not math.isfinite(value):
            self.problems[name] = "enter a finite number"
            return default
        return value

    def integer(self, name: str, raw: str, *, default: int = 0) -> int:
        text = raw.strip()
        if not text:
            return default
        if not re.fullmatch(r"-?\d{1,9}", text):
            self.problems[name] = f"{text[:20]!r} is not a whole number"
            return default
        return int(text)


def _guardrails(text: str, problems: dict[str, str]) -> list[dict[str, Any]]:
    """Lines of ``metric max-drop-percent`` (``add_to_cart 5``: must not fall by over 5 %)."""
    out: list[dict[str, Any]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        parts = line.replace("%", " ").split()
        if not parts:
            continue
        try:
            if len(parts) != 2:
                raise ValueError(line)
            drop = float(parts[1].replace(",", "."))
        except ValueError:
            problems["analysis.guardrails"] = (
                f"line {n}: write a metric and the largest tolerated drop in percent, "
                "e.g. 'add_to_cart 5'"
            )
            continue
        out.append({"metric": parts[0], "max_drop": drop / 100})
    return out


def _conditions(text: str, problems: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n, line in enumerate((ln.strip() for ln in text.splitlines()), start=1):
        if not line:
            continue
        parts = line.split(None, 2)
        if len(parts) != 3 or parts[0] not in ATTRIBUTES or parts[1] not in ATTRIBUTE_OPS:
            problems["targeting.conditions"] = (
                f"line {n}: write 'attribute op value', e.g. 'cart_size gt 0'; attributes: "
                f"{', '.join(ATTRIBUTES)}; ops: {', '.join(ATTRIBUTE_OPS)}"
            )
            continue
        attribute, op, raw = parts
        value: str | float | list[str] = raw
        if op in ("in", "nin"):
            value = [v for v in _SPLIT.split(raw) if v]
        elif op in ("gt", "lt"):
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                problems["targeting.conditions"] = (
                    f"line {n}: {op} needs a finite number, got {raw[:20]!r}"
                )
                continue
        out.append({"attribute": attribute, "op": op, "value": value})
    return out


def _timestamp(name: str, raw: str, problems: dict[str, str]) -> float | None:
    text = raw.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        problems[name] = "use the date picker (YYYY-MM-DD HH:MM, UTC)"
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _datetime_text(at: float | None) -> str:
    return "" if at is None else datetime.fromtimestamp(at, UTC).strftime(DATETIME_FORMAT)


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if abs(value) < 1e15 else repr(value)


def _condition_value(value: str | float | list[str]) -> str:
    if isinstance(value, list):
        return ",".join(value)
    return _num(value) if isinstance(value, float) else str(value)
