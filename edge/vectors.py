"""Golden test vectors for the edge core: run `edge.flow.handle_slot` on scripted cases.

`run_vectors(payload) -> str` is the one entry point. CPython tests, Pyodide (through the test
runner) and the WASI build call it on the same document and must return byte-identical text,
which proves the edge decides the same way on every runtime.

The payload is a JSON document (``tests/edge/vectors/edge_vectors.json`` is one; keys other than
these four are ignored, so the golden file with its ``expected`` part is a valid payload)::

    format    1
    config    the edge config's JSON form (`edge.config.parse_config`)
    bundles   {name: wire-format v1 bundle, as JSON text}
    vectors   [{"name": str,
                "bundle": name | null,          the bundle in the edge cache (null: none)
                "cache_entry_age": s | null,    its age at the request (null: cache miss)
                "request": {"slot", "headers" (lower-cased), "query", "now", "fresh_visitor_id"},
                "origin": null | {"status": int (0 = no answer), "bundle": name | null,
                                  "body": str, "error": str}}, ...]

Each vector runs `handle_slot` with `drive_sync` on an `edge.memory.MemoryTransport`: its cache
holds at most the vector's cached entry and its origin answers with the vector's scripted
answer (`scripted_origin`); when the response asks for a background
revalidation, `revalidate` runs next against the same cache and origin. `decide` is that run
for one request (the WASI entry's decision mode calls it); `load_document`, `run_vector` and
`run_document` are the steps of `run_vectors`, for callers that time each vector. The result is
canonical JSON (sorted keys, no whitespace, UTF-8 text): one object per vector with status, headers
(``Server-Timing`` excluded: it is a measurement), body, cache status, variant, revalidate key,
chosen SKUs, the shopper context, the exposure, every effect performed (`Effect.describe`) and
the revalidation. Malformed input raises `edge.errors.BadEdgeInput` naming the vector and field.

Pure and self-contained: standard library, `fragments` and the edge core only; no clock, no
randomness, no I/O. It must never import an adapter or anything outside those packages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge.cache import CacheEntry
from edge.config import EdgeConfig, parse_config
from edge.errors import BadEdgeInput
from edge.flow import EdgeResponse, SlotRequest, drive_sync, handle_slot, revalidate
from edge.json_shape import json_number, json_object, json_string, json_string_map
from edge.memory import MemoryTransport
from edge.transport import FetchResult, OriginFetch
from fragments.bundle import Bundle, decode_bundle
from fragments.errors import FragmentsError

VECTOR_FORMAT = 1
_CHOSEN_SKU = re.compile(r'data-se-sku="([^"]*)"')
_EXCLUDED_HEADERS = frozenset({"server-timing"})


def scripted_origin(name: str, answer: FetchResult | None) -> MemoryTransport:
    """An in-memory transport whose origin answers every fetch with ``answer``.

    With no answer (the vector's ``origin`` is null) a fetch is a mistake in the vector: it
    raises BadEdgeInput naming the vector and the path.
    """

    def origin(fetch: OriginFetch) -> FetchResult:
        if answer is None:
            raise BadEdgeInput(
                f"vector {name!r}: the flow fetched {fetch.path} but 'origin' is null"
            )
        return answer

    return MemoryTransport(origin)


def run_vectors(payload: str) -> str:
    """Run every vector of the JSON document `payload`; return the canonical JSON outcomes."""
    return canonical_json(run_document(load_document(payload)))


@dataclass(frozen=True, slots=True)
class VectorDocument:
    """A checked vector document: the edge config, the named bundles and the vectors."""

    config: EdgeConfig
    bundles: Mapping[str, NamedBundle]
    vectors: tuple[dict[str, Any], ...]
    """Each vector as parsed JSON (an object; its fields are checked when it runs)."""


def load_document(payload: str) -> VectorDocument:
    """Parse and check the document's format, config and bundles (raises BadEdgeInput)."""
    doc = json_object(_parse(payload), "document")
    if doc.get("format") != VECTOR_FORMAT:
        raise BadEdgeInput(f"document: 'format' must be {VECTOR_FORMAT}, got {doc.get('format')!r}")
    config = parse_config(json_object(doc.get("config"), "config"))
    bundles = _bundles(json_object(doc.get("bundles"), "bundles"))
    vectors = doc.get("vectors")
    if not isinstance(vectors, list) or not vectors:
        raise BadEdgeInput("document: 'vectors' must be a non-empty array")
    checked = tuple(json_object(v, f"vectors[{i}]") for i, v in enumerate(vectors))
    return VectorDocument(config, bundles, checked)


def run_document(doc: VectorDocument) -> list[dict[str, Any]]:
    """The outcome of every vector of `doc`, in order (what `run_vectors` serializes)."""
    outcomes = [run_vector(vector, doc) for vector in doc.vectors]
    names = [o["name"] for o in outcomes]
    if len(set(names)) != len(names):
        raise BadEdgeInput("document: vector names must be unique")
    return outcomes


def canonical_json(value: Any) -> str:
    """The one serialization of outcomes: sorted keys, compact, non-ASCII kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def run_vector(vector: Mapping[str, Any], doc: VectorDocument) -> dict[str, Any]:
    """Check one vector of `doc` and run it; return its outcome object."""
    name = json_string(vector, "name", "vector")
    where = f"vector {name!r}"
    origin = parse_origin(vector.get("origin"), doc.bundles, where)
    bundle_name = vector.get("bundle")
    age = vector.get("cache_entry_age")
    request = parse_request(json_object(vector.get("request"), f"{where}: request"), where)
    if (bundle_name is None) != (age is None):
        raise BadEdgeInput(f"{where}: 'bundle' and 'cache_entry_age' are both set or both null")
    cached = None
    if bundle_name is not None:
        bundle = _bundle_ref(doc.bundles, bundle_name, f"{where}: bundle").bundle
        cached = CacheEntry(bundle, request.now - json_number(age, where))
    return decide(name, request, doc.config, cached, origin)


def decide(
    name: str,
    request: SlotRequest,
    config: EdgeConfig,
    cached: CacheEntry | None,
    origin: FetchResult | None,
) -> dict[str, Any]:
    """Run one request against a cache holding at most `cached` and a scripted origin.

    Returns the outcome object of one vector; the background revalidation, when the response
    asks for one, runs next against the same cache and origin.
    """
    transport = scripted_origin(name, origin)
    if cached is not None:
        transport.store.put(cached)
    response, _core_seconds = drive_sync(handle_slot(request, config), transport)
    outcome = _outcome(name, response, transport.described())
    outcome["revalidation"] = None
    if response.revalidate is not None:
        start = len(transport.log)
        result, _ = drive_sync(revalidate(response.revalidate, request.now), transport)
        outcome["revalidation"] = {"outcome": result, "effects": transport.described(start)}
    return outcome


def _outcome(name: str, response: EdgeResponse, effects: list[str]) -> dict[str, Any]:
    ctx = response.context
    exposure = response.exposure
    return {
        "name": name,
        "status": response.status,
        "headers": [[k, v] for k, v in response.headers if k.lower() not in _EXCLUDED_HEADERS],
        "body": response.body,
        "cache_status": response.cache_status,
        "variant": response.variant,
        "revalidate": None if response.revalidate is None else response.revalidate.cache_key,
        "chosen": _CHOSEN_SKU.findall(response.body),
        "context": None
        if ctx is None
        else {
            "visitor_id": ctx.visitor_id,
            "new_visitor": ctx.new_visitor,
            "segment": ctx.segment,
            "personalize": ctx.personalize,
            "cart": sorted(ctx.cart_skus),
            "recent_categories": list(ctx.recent_categories),
            "price_reference_cents": ctx.price_reference_cents,
            "country": ctx.country,
            "device": ctx.device,
        },
        "exposure": None
        if exposure is None
        else {
            "experiment": exposure.experiment,
            "variant": exposure.variant,
            "visitor_id": exposure.visitor_id,
            "slot": exposure.slot,
            "segment": exposure.segment,
        },
        "effects": list(effects),
    }


# --- input validation ----------------------------------------------------------------------


def _parse(payload: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise BadEdgeInput(f"document is not JSON: {exc}") from exc


@dataclass(frozen=True, slots=True)
class NamedBundle:
    """A bundle of the document: its wire text (what the origin sends) and its decoded form."""

    wire: str
    bundle: Bundle


def _bundles(raw: Mapping[str, Any]) -> dict[str, NamedBundle]:
    out: dict[str, NamedBundle] = {}
    for name, wire in raw.items():
        if not isinstance(wire, str):
            raise BadEdgeInput(f"bundles[{name!r}] must be the bundle's wire JSON as a string")
        try:
            out[name] = NamedBundle(wire, decode_bundle(wire))
        except FragmentsError as exc:
            raise BadEdgeInput(f"bundles[{name!r}]: {exc}") from exc
    return out


def _bundle_ref(bundles: Mapping[str, NamedBundle], name: Any, where: str) -> NamedBundle:
    if not isinstance(name, str) or name not in bundles:
        raise BadEdgeInput(f"{where}: {name!r} is not a bundle of the document")
    return bundles[name]


def parse_request(raw: Mapping[str, Any], where: str) -> SlotRequest:
    headers = json_string_map(raw.get("headers", {}), f"{where}: request.headers")
    if any(k != k.lower() for k in headers):
        raise BadEdgeInput(f"{where}: request.headers names must be lower-case")
    return SlotRequest(
        slot=json_string(raw, "slot", f"{where}: request"),
        headers=headers,
        query=json_string_map(raw.get("query", {}), f"{where}: request.query"),
        now=json_number(raw.get("now"), f"{where}: request.now"),
        fresh_visitor_id=json_string(raw, "fresh_visitor_id", f"{where}: request"),
    )


def parse_origin(raw: Any, bundles: Mapping[str, NamedBundle], where: str) -> FetchResult | None:
    if raw is None:
        return None
    origin = json_object(raw, f"{where}: origin")
    status = origin.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 0 <= status <= 599:
        raise BadEdgeInput(f"{where}: origin.status must be an integer in 0..599")
    body = origin.get("body", "")
    if not isinstance(body, str):
        raise BadEdgeInput(f"{where}: origin.body must be a string")
    if origin.get("bundle") is not None:
        if body:
            raise BadEdgeInput(f"{where}: origin has both 'bundle' and 'body'")
        body = _bundle_ref(bundles, origin["bundle"], f"{where}: origin.bundle").wire
    error = origin.get("error", "")
    if not isinstance(error, str):
        raise BadEdgeInput(f"{where}: origin.error must be a string")
    return FetchResult(status, body.encode("utf-8"), error)
