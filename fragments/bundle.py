"""The fragment bundle: the cacheable, privacy-safe unit the origin renders and the edge serves.

One bundle per (slot, segment or anchor SKU, variant, locale): ranked candidates with the
features the edge reranks on and each one's pre-rendered card HTML, the wrapper around the
cards, the rerank settings of its slot, its cache policy, tags, version and content hash.

Wire format v1 (JSON, compact): candidates are positional arrays, see `_CANDIDATE_FIELDS`; the
key is ``[slot, segment, variant, locale]``, with the anchor SKU as a fifth element when anchored.
Decoding rejects anything that is not exactly a v1 bundle. Never performs I/O.

The content hash and the wire bytes are both JSON of documents whose bulk is the candidate
rows. A row's JSON text is memoised per candidate and the documents are joined from those
texts, byte for byte what encoding the whole document at once gives: a recompute that changed
one card of a hundred encodes one row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, TypeVar

from fragments.errors import BundleFormatError
from fragments.ids import FragmentKey
from fragments.slots import CachePolicy, RankAdjustment, SlotConfig

WIRE_VERSION = 1
ROW_CACHE_SIZE = 16_384
"""Candidate rows whose JSON text is kept (`_row_json`, about 1 KB each): several times the
candidates of every stored bundle."""
_T = TypeVar("_T")
StockState = Literal["in_stock", "low_stock", "sold_out"]
STOCK_STATES: tuple[StockState, ...] = ("in_stock", "low_stock", "sold_out")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ranked product in a bundle, with what the edge reranks on and its card."""

    sku: str
    score: float
    """The origin's segment-list score (higher first)."""
    category: str
    brand: str
    price_cents: int
    stock_state: StockState
    badges: tuple[str, ...]
    """Visible badges, e.g. ``sale``, ``low-stock``, ``sold-out``."""
    card_html: str
    """Pre-rendered, escaped HTML of this product's card."""


_CANDIDATE_FIELDS = (
    "sku", "score", "category", "brand", "price_cents", "stock_state", "badges", "card_html",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RerankSettings:
    """The slot's settings the edge needs to rerank (copied from SlotConfig into each bundle)."""

    shown: int
    max_per_category: int
    pin: tuple[str, ...] = ()
    adjustments: tuple[RankAdjustment, ...] = ()

    @classmethod
    def from_slot(cls, slot: SlotConfig) -> RerankSettings:
        return cls(slot.shown, slot.max_per_category, slot.rules.pin, slot.rules.adjustments)


@dataclass(frozen=True, slots=True)
class Bundle:
    """A rendered, ranked, cacheable fragment bundle."""

    key: FragmentKey
    candidates: tuple[Candidate, ...]
    head_html: str
    """Wrapper HTML before the cards."""
    tail_html: str
    """Wrapper HTML after the cards."""
    rerank: RerankSettings
    fallback_html: str
    policy: CachePolicy
    tags: tuple[str, ...]
    version: int
    """Increases by one each time the content hash of this key changes."""
    content_hash: str
    """Hash of everything a shopper can see; equal hashes mean no purge is needed."""
    built_at: float
    """Unix time the origin built it."""

    @property
    def etag(self) -> str:
        """Strong entity tag derived from the content hash."""
        return f'"{self.content_hash}"'

    @property
    def skus(self) -> tuple[str, ...]:
        return tuple(c.sku for c in self.candidates)


def content_hash(
    key: FragmentKey,
    candidates: tuple[Candidate, ...],
    head_html: str,
    tail_html: str,
    rerank: RerankSettings,
    fallback_html: str,
) -> str:
    """Hash what a shopper can see (and what decides it): not version, time or tags.

    The hashed text is the compact, key-sorted JSON of
    ``{"c": rows, "f": fallback, "h": head, "key": cache key, "r": rerank, "t": tail}``.
    """
    raw = (
        f'{{"c":{_rows_json(candidates)},"f":{_json(fallback_html)},"h":{_json(head_html)},'
        f'"key":{_json(key.cache_key)},"r":{_json(_rerank_doc(rerank), sort_keys=True)},'
        f'"t":{_json(tail_html)}}}'
    )
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def _json(value: object, *, sort_keys: bool = False) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)


def _rows_json(candidates: tuple[Candidate, ...]) -> str:
    """The JSON array of the candidates' rows."""
    return "[" + ",".join(map(_row_json, candidates)) + "]"


@lru_cache(maxsize=ROW_CACHE_SIZE)
def _row_json(candidate: Candidate) -> str:
    return _json(_candidate_row(candidate))


def _candidate_row(c: Candidate) -> list[Any]:
    return [
        c.sku, round(c.score, 6), c.category, c.brand, c.price_cents,
        c.stock_state, list(c.badges), c.card_html,
    ]  # fmt: skip


def _rerank_doc(r: RerankSettings) -> dict[str, Any]:
    return {
        "shown": r.shown,
        "max_per_category": r.max_per_category,
        "pin": list(r.pin),
        "adj": [[a.factor, a.category, a.brand] for a in r.adjustments],
    }


def encode_bundle(bundle: Bundle) -> bytes:
    """Serialize to wire format v1 (compact JSON, UTF-8): the object below, keys in this order."""
    k = bundle.key
    key_row = [k.slot, k.segment, k.variant, k.locale]
    if k.anchor is not None:
        key_row.append(k.anchor)
    head = {"v": WIRE_VERSION, "key": key_row}
    tail = {
        "h": bundle.head_html,
        "t": bundle.tail_html,
        "r": _rerank_doc(bundle.rerank),
        "f": bundle.fallback_html,
        "p": [
            bundle.policy.max_age,
            bundle.policy.stale_while_revalidate,
            bundle.policy.stale_if_error,
        ],
        "tags": list(bundle.tags),
        "ver": bundle.version,
        "hash": bundle.content_hash,
        "at": bundle.built_at,
    }
    # {head..., "c": rows, tail...}: the two partial objects lose their closing and opening brace.
    text = f'{_json(head)[:-1]},"c":{_rows_json(bundle.candidates)},{_json(tail)[1:]}'
    return text.encode("utf-8")


def decode_bundle(data: bytes | str) -> Bundle:
    """Parse wire format v1; raise BundleFormatError naming what is wrong."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleFormatError(f"bundle is not JSON: {exc}") from exc
    except RecursionError as exc:  # nesting deeper than the interpreter's recursion limit
        raise BundleFormatError("bundle is not JSON a bundle can be: nested too deeply") from exc
    if not isinstance(doc, dict):
        raise BundleFormatError("bundle must be a JSON object")
    if doc.get("v") != WIRE_VERSION:
        raise BundleFormatError(f"unsupported bundle wire version {doc.get('v')!r}")
    try:
        slot, segment, variant, locale, *anchor = doc["key"]
        if len(anchor) > 1:
            raise BundleFormatError(f"bundle key has {4 + len(anchor)} parts; expected 4 or 5")
        rerank = doc["r"]
        max_age, swr, sie = doc["p"]
        return Bundle(
            key=FragmentKey(slot, segment, variant, locale, anchor[0] if anchor else None),
            candidates=tuple(_decode_candidate(row) for row in _array(doc["c"], "c")),
            head_html=_typed(doc["h"], str),
            tail_html=_typed(doc["t"], str),
            rerank=RerankSettings(
                shown=_typed(rerank["shown"], int),
                max_per_category=_typed(rerank["max_per_category"], int),
                pin=tuple(_typed(s, str) for s in _array(rerank["pin"], "r.pin")),
                adjustments=tuple(_decode_adjustment(a) for a in _array(rerank["adj"], "r.adj")),
            ),
            fallback_html=_typed(doc["f"], str),
            policy=CachePolicy(_typed(max_age, int), _typed(swr, int), _typed(sie, int)),
            tags=tuple(_typed(t, str) for t in _array(doc["tags"], "tags")),
            version=_typed(doc["ver"], int),
            content_hash=_typed(doc["hash"], str),
            built_at=float(doc["at"]),
        )
    except BundleFormatError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        # OverflowError: an integer too large for a float (a score or a timestamp)
        raise BundleFormatError(f"malformed v1 bundle: {exc!r}") from exc


def _decode_candidate(row: Any) -> Candidate:
    if not isinstance(row, list) or len(row) != len(_CANDIDATE_FIELDS):
        raise BundleFormatError(f"candidate must be an array of {len(_CANDIDATE_FIELDS)} fields")
    sku, score, category, brand, price, stock, badges, card = row
    if stock not in STOCK_STATES:
        raise BundleFormatError(f"candidate {sku!r}: unknown stock_state {stock!r}")
    return Candidate(
        sku=_typed(sku, str),
        score=float(score),
        category=_typed(category, str),
        brand=_typed(brand, str),
        price_cents=_typed(price, int),
        stock_state=stock,
        badges=tuple(_typed(b, str) for b in _array(badges, "badges")),
        card_html=_typed(card, str),
    )


def _decode_adjustment(row: Any) -> RankAdjustment:
    factor, category, brand = _array(row, "r.adj[]")
    if isinstance(factor, bool) or not isinstance(factor, int | float):
        raise BundleFormatError(f"adjustment factor: expected number, got {type(factor).__name__}")
    for value in (category, brand):
        if value is not None:
            _typed(value, str)
    return RankAdjustment(float(factor), category, brand)


def _array(value: Any, what: str) -> list[Any]:
    """A JSON array (a string is iterable too, but never a valid list of ids)."""
    if not isinstance(value, list):
        raise BundleFormatError(f"{what}: expected array, got {type(value).__name__}")
    return value


def _typed(value: Any, kind: type[_T]) -> _T:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BundleFormatError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value
