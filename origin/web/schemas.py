"""JSON Schemas of what the origin's API accepts, generated from the definitions that validate it.

The OpenAPI document (`origin.web.openapi`) takes every parameter and body schema from here, and
here takes every limit from the code that enforces it: the id grammar (`fragments.ids`), the
experiment codec and validator (`fragments.experiments`, `fragments.experiment_validation`), the
wire events (`fragments.wire_events`) and the slot catalog and templates the app serves. A limit
written twice is a contract waiting to drift: if you change a rule, change it at its definition
and this schema follows. Rules JSON Schema cannot state (variant weights summing to 1, unique
variant ids, segments that exist in the catalog, an end after the start) are named in the
schema's ``description`` and answered with 422 naming each field. Pure; never serves.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fragments.experiment_validation import (
    MDE_MAX,
    MIN_VARIANTS,
    MINIMUM_VISITORS_RANGE,
    PRICE_FLOOR_MAX,
    RECENCY_BOOST_MAX,
    SHOWN_RANGE,
)
from fragments.experiments import (
    ATTRIBUTE_OPS,
    ATTRIBUTES,
    CORRECTIONS,
    MAX_SCORING_EXPONENT,
    METRICS,
    SCORING_FIELDS,
    STATUSES,
)
from fragments.ids import CONTROL_VARIANT, ID_PATTERN, LOCALE_PATTERN, SKU_PATTERN, anchored
from fragments.labels import LABEL_NAMES, MAX_LABEL_FACTOR, MAX_LABEL_VALUES
from fragments.wire_events import (
    EVENT_ID,
    EVENT_TYPES,
    MAX_FUTURE_SECONDS,
    MAX_PAST_SECONDS,
    MAX_VALUE_CENTS,
    VISITOR,
)
from fragments.wire_events import ID as EVENT_REF
from fragments.wire_events import SKU as EVENT_SKU

Schema = dict[str, Any]

MAX_VERSION_DIGITS = 11
"""Version numbers in paths and If-Match have at most this many digits."""
IF_MATCH = re.compile(rf'(?:W/)?"([0-9]{{1,{MAX_VERSION_DIGITS}}})"')
"""An If-Match naming one experiment version, as the ETag carried it: ``"3"`` (or ``W/"3"``)."""
AUDIT_LIMIT_MAX = 1000
"""GET /v1/experiments/{key}/audit returns at most this many entries per request."""
PREVIEW_CODE_PATTERN = r"[A-Za-z0-9_-]{16,64}"
"""A one-time preview link's code (the service issues ``secrets.token_urlsafe(24)``)."""
RESULT_METRICS = ("purchase", "add_to_cart", "click")
RESULT_GRANULARITIES = ("day", "hour")


def string(pattern: str, description: str | None = None) -> Schema:
    """A string matching `pattern` as a whole (the regex validators use with ``fullmatch``)."""
    out: Schema = {"type": "string", "pattern": anchored(pattern)}
    if description:
        out["description"] = description
    return out


ID = string(ID_PATTERN, "1-64 chars of a-z, 0-9, '-', '_', starting with a letter or digit")
SKU = string(SKU_PATTERN, "1-64 chars of A-Z, a-z, 0-9, '-', '_', '.', starting alphanumeric")
LOCALE = string(LOCALE_PATTERN, "a language(-REGION) tag such as en-US")
VERSION: Schema = {"type": "integer", "minimum": 1, "maximum": 10**MAX_VERSION_DIGITS - 1}
IF_MATCH_SCHEMA = string(IF_MATCH.pattern, 'The version you edited, as its ETag: "3"')


def preview_exchange_schema() -> Schema:
    """``{"code": ...}``, the body of POST /v1/preview/exchange."""
    return {
        "type": "object",
        "required": ["code"],
        "properties": {"code": string(PREVIEW_CODE_PATTERN, "the code of a preview link")},
    }


def _share(maximum: float = 1.0, *, exclusive: bool = False) -> Schema:
    bound = "exclusiveMaximum" if exclusive else "maximum"
    return {"type": "number", "minimum": 0, bound: maximum}


def _strings(item: Schema | None = None) -> Schema:
    return {"type": "array", "items": item or {"type": "string"}}


def analysis_schema() -> Schema:
    """How results judge an experiment (`fragments.experiments.Analysis`), with the limits
    `fragments.experiment_validation` enforces."""
    guardrail: Schema = {
        "type": "object",
        "required": ["metric", "max_drop"],
        "properties": {
            "metric": {"enum": list(METRICS)},
            "max_drop": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1,
                         "description": "the largest tolerated relative drop (0.05: 5 %)"},
        },
    }  # fmt: skip
    return {
        "type": "object",
        "description": "A guardrail watches a metric other than the primary one, one guardrail "
        "per metric (else 422 naming analysis.guardrails[i].metric).",
        "properties": {
            "primary_metric": {"enum": list(METRICS)},
            "guardrails": {"type": "array", "maxItems": len(METRICS) - 1, "items": guardrail},
            "correction": {"enum": list(CORRECTIONS),
                           "description": "Holm (family-wise) or Benjamini-Hochberg (FDR)"},
            "minimum_visitors": {"type": "integer", "minimum": MINIMUM_VISITORS_RANGE[0],
                                 "maximum": MINIMUM_VISITORS_RANGE[1],
                                 "description": "exposed visitors per variant before a verdict"},
            "cuped": {"type": "boolean",
                      "description": "adjust with the visitors' pre-exposure activity"},
            "mde": {"type": "number", "exclusiveMinimum": 0, "maximum": MDE_MAX,
                    "description": "the relative minimum detectable effect planned for"},
        },
    }  # fmt: skip


def _label_rule() -> Schema:
    """A variant's custom-label rule (`fragments.labels.parse_label_rule`)."""
    values: Schema = {
        "type": "object",
        "propertyNames": {"enum": list(LABEL_NAMES)},
        "additionalProperties": {
            "type": "array", "minItems": 1, "maxItems": MAX_LABEL_VALUES,
            "items": {"type": "string", "minLength": 1, "maxLength": 100},
        },
    }  # fmt: skip
    return {
        "type": ["object", "null"],
        "description": (
            "Replaces the slots' custom-label rule: include / exclude products by "
            "custom_label_0..4 values, boost matching ones ({custom_label_N: value, factor})."
        ),
        "properties": {
            "include": values,
            "exclude": values,
            "boost": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["factor"],
                    "minProperties": 2,
                    "maxProperties": 2,
                    "properties": {
                        "factor": {"type": "number", "exclusiveMinimum": 0,
                                   "maximum": MAX_LABEL_FACTOR},
                        **{name: {"type": "string", "minLength": 1, "maxLength": 100}
                           for name in LABEL_NAMES},
                    },
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    }  # fmt: skip


def experiment_schema(slots: Sequence[str], templates: Sequence[str]) -> Schema:
    """The experiment JSON `fragments.experiment_codec` reads and `validate` accepts, for an
    origin serving `slots` with variant `templates`."""
    template: Schema = {"type": ["string", "null"], "enum": [*templates, None]}
    changes: Schema = {
        "type": "object",
        "properties": {
            "wrapper_template": template,
            "card_template": template,
            "scoring": {
                "type": ["object", "null"],
                "propertyNames": {"enum": list(SCORING_FIELDS)},
                "additionalProperties": {"type": "number", "minimum": 0,
                                         "maximum": MAX_SCORING_EXPONENT},
            },
            "shown": {"type": ["integer", "null"], "minimum": SHOWN_RANGE[0],
                      "maximum": SHOWN_RANGE[1]},
            "recency_boost": {"type": ["number", "null"], "minimum": 0,
                              "maximum": RECENCY_BOOST_MAX},
            "price_floor": {"type": ["number", "null"], "minimum": 0, "maximum": PRICE_FLOOR_MAX},
            "origin_rendered": {"type": "boolean"},
            "labels": _label_rule(),
        },
    }  # fmt: skip
    variant: Schema = {
        "type": "object",
        "required": ["id", "weight"],
        "properties": {
            "id": ID,
            "name": {"type": "string"},
            "weight": _share(),
            "changes": {"oneOf": [changes, {"type": "null"}]},
        },
    }
    return {
        "type": "object",
        "description": (
            "Also checked, each answered with 422 naming the field: the first variant is "
            f"{CONTROL_VARIANT!r} and changes nothing, variant weights sum to 1, "
            "variant ids are unique (and not used by another live experiment on the same slot), "
            "targeting segments exist in the catalog, ends_at is after starts_at, a namespace "
            "range does not overlap another experiment's in the same namespace."
        ),
        "required": ["key", "name", "slots", "variants"],
        "properties": {
            "key": ID,
            "name": {"type": "string", "pattern": r"\S", "description": "not blank"},
            "status": {"enum": list(STATUSES)},
            "slots": {"type": "array", "minItems": 1, "items": {"enum": list(slots)}},
            "variants": {
                "type": "array",
                "minItems": MIN_VARIANTS,
                "items": variant,
                "description": f"the first is {CONTROL_VARIANT!r} and changes nothing "
                "(prefixItems would say so, but schemathesis's validator rejects it: 422)",
            },
            "targeting": {
                "type": ["object", "null"],
                "properties": {
                    "segments": _strings(ID),
                    "countries": _strings(),
                    "devices": _strings(),
                    "path_patterns": _strings(),
                    "conditions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["attribute", "op", "value"],
                            "properties": {
                                "attribute": {"enum": list(ATTRIBUTES)},
                                "op": {"enum": list(ATTRIBUTE_OPS)},
                                "value": {},
                            },
                        },
                    },
                },
            },
            "coverage": _share(),
            "hash_seed": {"type": "string"},
            "hash_version": {"enum": [1, 2]},
            "bucket_version": {"type": "integer"},
            "namespace": {
                "type": ["object", "null"],
                "required": ["id"],
                "properties": {"id": {"type": "string"}, "start": _share(), "end": _share()},
            },
            "holdout": _share(exclusive=True),
            "starts_at": {"type": ["number", "null"]},
            "ends_at": {"type": ["number", "null"]},
            "analysis": analysis_schema(),
            "version": {"type": "integer", "readOnly": True},
        },
    }


def experiment_example(slots: Sequence[str]) -> Schema:
    """A valid draft on the first of `slots` (the document's request example)."""
    return {
        "key": "example",
        "name": "Example: fewer products",
        "slots": list(slots[:1]),
        "variants": [
            {"id": CONTROL_VARIANT, "weight": 0.5},
            {"id": "fewer", "weight": 0.5, "changes": {"shown": SHOWN_RANGE[0] + 2}},
        ],
    }


def event_batch_schema(max_events: int) -> Schema:
    """``{"events": [...]}`` as `fragments.wire_events.validate_event` accepts each event."""
    optional = {"type": ["string", "null"]}
    event: Schema = {
        "type": "object",
        "required": ["id", "type", "experiment", "variant", "visitor"],
        "additionalProperties": False,
        "properties": {
            "id": string(EVENT_ID.pattern),
            "type": {"enum": list(EVENT_TYPES)},
            "experiment": string(EVENT_REF.pattern),
            "variant": string(EVENT_REF.pattern),
            "visitor": string(VISITOR.pattern),
            "at": {
                "type": "number",
                "description": f"unix seconds, within the last {MAX_PAST_SECONDS} s and at "
                f"most {MAX_FUTURE_SECONDS} s ahead of the server's clock (default: now); "
                "outside that window: 400",
            },
            "slot": {**optional, "pattern": anchored(EVENT_REF.pattern)},
            "sku": {**optional, "pattern": anchored(EVENT_SKU.pattern)},
            "segment": {**optional, "pattern": anchored(EVENT_REF.pattern)},
            "value_cents": {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": MAX_VALUE_CENTS,
                "description": "purchases only",
            },
            "position": {"description": "accepted from older storefronts and ignored"},
        },
        "if": {"properties": {"type": {"const": "purchase"}}},
        "else": {"properties": {"value_cents": {"type": "null"}}},
    }
    return {
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {"type": "array", "minItems": 1, "maxItems": max_events, "items": event}
        },
    }
