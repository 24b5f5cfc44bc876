"""Slot definitions: load and validate `slots.toml` into typed, immutable `SlotConfig` objects.

A slot is a place on the storefront (home hero, cross-sell, upsell) with its templates, its
candidate and shown counts, its cache policy, how its segment list is scored and its business
rules. Invalid config fails at load with the file, the slot and the reason. Never performs I/O
beyond reading the one file it is asked to read.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fragments.errors import FragmentsError, SlotConfigError
from fragments.ids import check_id, check_locale, check_sku, is_id
from fragments.labels import NO_LABEL_RULE, LabelRule, LabelRuleInvalid, parse_label_rule

DEFAULT_SLOTS_FILE = Path(__file__).with_name("slots.toml")
MAX_CANDIDATES = 500
DEFAULT_COMPOSE_BUDGET_MS = 250
"""How long a page the edge composes waits for a slot before putting its fallback there."""
MAX_COMPOSE_BUDGET_MS = 10_000


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How long shared caches may keep a bundle (seconds)."""

    max_age: int
    """Fresh lifetime (RFC 9111 max-age / s-maxage)."""
    stale_while_revalidate: int
    """After max-age, serve stale while one background fetch refreshes (RFC 5861)."""
    stale_if_error: int
    """After max-age, serve stale when the origin fails (RFC 5861)."""


@dataclass(frozen=True, slots=True)
class ScoringWeights:
    """Exponents of the segment-list score (see origin/core/scoring.py)."""

    affinity: float = 1.0
    popularity: float = 1.0
    margin: float = 0.5


@dataclass(frozen=True, slots=True)
class RankAdjustment:
    """A business boost (factor > 1) or bury (factor < 1) for a category and/or brand."""

    factor: float
    category: str | None = None
    brand: str | None = None

    def matches(self, category: str, brand: str) -> bool:
        return (self.category is None or self.category == category) and (
            self.brand is None or self.brand == brand
        )


@dataclass(frozen=True, slots=True)
class SlotRules:
    """Business rules applied by the edge rerank."""

    pin: tuple[str, ...] = ()
    adjustments: tuple[RankAdjustment, ...] = ()


ANCHOR_KINDS = ("product", "cart")
"""``anchor`` in slots.toml: the slot's bundles are keyed by the viewed product ("product") or
merged at the edge from the bundles of the cart's products ("cart")."""

SCORING_SOURCE = "scoring"
LIST_SOURCE_PREFIX = "list:"


@dataclass(frozen=True, slots=True)
class CandidateSource:
    """Where a slot's candidates come from (``source`` in slots.toml).

    ``scoring`` (the default): the built-in segment-list scoring. ``list:<name>``: the imported
    recommendation list named <name> for the bundle's segment. ``list:<name>|scoring``: that
    list first, the scoring filling in when the list is missing or shorter than the slot's
    candidates.
    """

    list_name: str | None = None
    """The imported list's name, or None for scoring only."""
    scoring: bool = True
    """Whether the scoring supplies (or completes) the candidates."""

    @classmethod
    def parse(cls, text: str) -> CandidateSource:
        """Parse a ``source`` value; ValueError names what is expected."""
        expected = "expected 'scoring', 'list:<name>' or 'list:<name>|scoring'"
        head, bar, tail = text.partition("|")
        if bar and tail != SCORING_SOURCE:
            raise ValueError(f"'source' {text!r}: only '|scoring' may follow a list; {expected}")
        if head == SCORING_SOURCE and not bar:
            return cls()
        if not head.startswith(LIST_SOURCE_PREFIX):
            raise ValueError(f"'source' {text!r}: {expected}")
        name = head.removeprefix(LIST_SOURCE_PREFIX)
        if not is_id(name):
            raise ValueError(
                f"'source' {text!r}: list name {name!r} must be 1-64 chars of a-z, 0-9, '-', '_'"
            )
        return cls(list_name=name, scoring=bool(bar))

    def __str__(self) -> str:
        if self.list_name is None:
            return SCORING_SOURCE
        return LIST_SOURCE_PREFIX + self.list_name + ("|" + SCORING_SOURCE if self.scoring else "")


@dataclass(frozen=True, slots=True)
class SlotConfig:
    """One merchandising slot."""

    id: str
    title: str
    wrapper_template: str
    card_template: str
    candidates: int
    """Ranked products carried in the bundle."""
    shown: int
    """Products the edge shows after reranking."""
    max_per_category: int
    """Diversity cap among shown products (0 = none)."""
    fallback_html: str
    """Safe default served when no bundle can be had."""
    policy: CachePolicy
    scoring: ScoringWeights
    rules: SlotRules = field(default_factory=SlotRules)
    source: CandidateSource = field(default_factory=CandidateSource)
    """Where the candidates come from: the scoring, an imported list, or both."""
    compose_budget_ms: int = DEFAULT_COMPOSE_BUDGET_MS
    """Milliseconds a page being composed at the edge waits for this slot (then: fallback)."""
    anchor: str | None = None
    """None (bundles per segment), "product" (per viewed product) or "cart" (the edge merges
    the bundles of the cart's products); see `ANCHOR_KINDS`."""
    labels: LabelRule = NO_LABEL_RULE
    """Which products may be candidates, and which are lifted or buried, by custom label
    (``include_labels``, ``exclude_labels``, ``label_boost``; `fragments.labels`)."""


@dataclass(frozen=True, slots=True)
class SlotCatalog:
    """All slots and the locales bundles are rendered in."""

    slots: Mapping[str, SlotConfig]
    locales: tuple[str, ...]

    def get(self, slot_id: str) -> SlotConfig | None:
        return self.slots.get(slot_id)


def load_slots(path: Path = DEFAULT_SLOTS_FILE) -> SlotCatalog:
    """Load and validate a slot config file."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SlotConfigError(source, None, f"cannot read: {exc.strerror}") from exc
    return parse_slots(text, source)


def parse_slots(text: str, source: str = "<slots>") -> SlotCatalog:
    """Parse slot config TOML text; `source` names it in errors."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SlotConfigError(source, None, f"not valid TOML: {exc}") from exc
    unknown_top = sorted(set(doc) - {"locales", "slots"})
    if unknown_top:
        names = ", ".join(unknown_top)
        reason = f"unknown top-level key(s) {names}; expected locales, slots"
        raise SlotConfigError(source, None, reason)
    locales = doc.get("locales", ["en-US"])
    if not isinstance(locales, list) or not locales or not all(isinstance(x, str) for x in locales):
        raise SlotConfigError(source, None, "'locales' must be a non-empty list of strings")
    try:
        for loc in locales:
            check_locale(loc)
    except FragmentsError as exc:
        raise SlotConfigError(source, None, str(exc)) from exc
    raw_slots = doc.get("slots")
    if not isinstance(raw_slots, dict) or not raw_slots:
        raise SlotConfigError(source, None, "no [slots.<id>] tables found")
    slots: dict[str, SlotConfig] = {}
    for slot_id, raw in raw_slots.items():
        try:
            slots[slot_id] = _parse_slot(slot_id, raw)
        except (FragmentsError, TypeError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, SlotConfigError) else str(exc)
            raise SlotConfigError(source, slot_id, reason) from exc
    return SlotCatalog(slots=slots, locales=tuple(locales))


def _parse_slot(slot_id: str, raw: Any) -> SlotConfig:
    check_id("slot", slot_id)
    if not isinstance(raw, dict):
        raise ValueError("must be a table")
    known = {
        "title", "wrapper", "card", "candidates", "shown", "max_per_category",
        "fallback_html", "policy", "scoring", "rules", "source", "compose_budget_ms", "anchor",
        "include_labels", "exclude_labels", "label_boost",
    }  # fmt: skip
    _reject_unknown(raw, known, "")
    candidates = _int(raw, "candidates", 1, MAX_CANDIDATES)
    shown = _int(raw, "shown", 1, candidates)
    policy_raw = _table(raw, "policy")
    _reject_unknown(policy_raw, {"max_age", "stale_while_revalidate", "stale_if_error"}, "policy.")
    policy = CachePolicy(
        max_age=_int(policy_raw, "max_age", 0, 31_536_000, "policy."),
        stale_while_revalidate=_int(policy_raw, "stale_while_revalidate", 0, 31_536_000, "policy."),
        stale_if_error=_int(policy_raw, "stale_if_error", 0, 31_536_000, "policy."),
    )
    scoring_raw = raw.get("scoring", {})
    if not isinstance(scoring_raw, dict):
        raise ValueError("'scoring' must be a table")
    _reject_unknown(scoring_raw, {"affinity", "popularity", "margin"}, "scoring.")
    scoring = ScoringWeights(
        **{k: _float(scoring_raw, k, 0.0, 10.0, "scoring.") for k in scoring_raw}
    )
    return SlotConfig(
        id=slot_id,
        title=_str(raw, "title"),
        wrapper_template=_str(raw, "wrapper"),
        card_template=_str(raw, "card"),
        candidates=candidates,
        shown=shown,
        max_per_category=_int(raw, "max_per_category", 0, 500, default=0),
        fallback_html=_str(raw, "fallback_html", allow_empty=True, default=""),
        policy=policy,
        scoring=scoring,
        rules=_parse_rules(raw.get("rules", {})),
        source=CandidateSource.parse(_str(raw, "source", default=SCORING_SOURCE)),
        compose_budget_ms=_int(
            raw, "compose_budget_ms", 1, MAX_COMPOSE_BUDGET_MS, default=DEFAULT_COMPOSE_BUDGET_MS
        ),
        anchor=_anchor(raw),
        labels=_labels(raw),
    )


def _labels(raw: dict[str, Any]) -> LabelRule:
    """The slot's label rule; its errors name the key (``include_labels.custom_label_9``)."""
    keys = {"include": "include_labels", "exclude": "exclude_labels", "boost": "label_boost"}
    try:
        rule = parse_label_rule(
            raw.get("include_labels"), raw.get("exclude_labels"), raw.get("label_boost")
        )
    except LabelRuleInvalid as exc:
        part, dot, rest = exc.field.partition(".")
        head, bracket, tail = part.partition("[")
        field = keys.get(head, head) + bracket + tail + dot + rest
        raise ValueError(f"'{field}': {exc.reason}") from exc
    if rule.active and "anchor" in raw:
        raise ValueError(
            "'include_labels', 'exclude_labels' and 'label_boost' apply to segment slots; an "
            "anchored slot takes its candidates from the anchor's lists"
        )
    return rule


def _anchor(raw: dict[str, Any]) -> str | None:
    if "anchor" not in raw:
        return None
    value = raw["anchor"]
    if value not in ANCHOR_KINDS:
        raise ValueError(f"'anchor' {value!r}: expected one of {', '.join(ANCHOR_KINDS)}")
    return str(value)


def _parse_rules(raw: Any) -> SlotRules:
    if not isinstance(raw, dict):
        raise ValueError("'rules' must be a table")
    _reject_unknown(raw, {"pin", "boost", "bury"}, "rules.")
    pin = raw.get("pin", [])
    if not isinstance(pin, list) or not all(isinstance(s, str) for s in pin):
        raise ValueError("'rules.pin' must be a list of SKU strings")
    for sku in pin:
        check_sku(sku)
    adjustments: list[RankAdjustment] = []
    for kind in ("boost", "bury"):
        items = raw.get(kind, [])
        if not isinstance(items, list):
            raise ValueError(f"'rules.{kind}' must be a list of tables")
        for i, item in enumerate(items):
            where = f"rules.{kind}[{i}]"
            if not isinstance(item, dict) or not ({"category", "brand"} & set(item)):
                raise ValueError(f"'{where}' needs a 'category' and/or 'brand' and a 'factor'")
            _reject_unknown(item, {"category", "brand", "factor"}, where + ".")
            for name in ("category", "brand"):
                if name in item and (not isinstance(item[name], str) or not item[name]):
                    raise ValueError(f"'{where}.{name}' must be a non-empty string")
            factor = _float(item, "factor", 0.0, 100.0, where + ".")
            if not (factor > 1.0 if kind == "boost" else factor < 1.0):
                raise ValueError(f"'{where}.factor' must be {'> 1' if kind == 'boost' else '< 1'}")
            adjustments.append(RankAdjustment(factor, item.get("category"), item.get("brand")))
    return SlotRules(pin=tuple(pin), adjustments=tuple(adjustments))


def _reject_unknown(raw: dict[str, Any], known: set[str], prefix: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        names = ", ".join(prefix + k for k in unknown)
        raise ValueError(f"unknown key(s) {names}; expected some of {sorted(known)}")


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise ValueError(f"missing table [{key}]")
    return value


def _str(
    raw: dict[str, Any], key: str, *, allow_empty: bool = False, default: str | None = None
) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise ValueError(f"'{key}' must be a non-empty string")
    return value


def _int(
    raw: dict[str, Any], key: str, low: int, high: int, prefix: str = "", default: int | None = None
) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"'{prefix}{key}' must be an integer in {low}..{high}, got {value!r}")
    return value


def _float(raw: dict[str, Any], key: str, low: float, high: float, prefix: str = "") -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"'{prefix}{key}' must be a number in {low}..{high}, got {value!r}")
    return float(value)
