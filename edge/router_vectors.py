"""String-in, string-out entries to the router, so one JSON case file drives every runtime.

The Pyodide runner (and any other host: WASI, workerd) calls ``module:function(str) -> str``.
These functions decode a JSON request, call `edge.router` and encode the answer; they add no
logic of their own, so an assignment computed here under Pyodide is the router's own answer.
Pure and stdlib-only: it must never perform I/O or read the clock (the caller passes `now`).

- `hash_values`: ``{"cases": [[seed, value, version], ...]}`` -> ``[hash or null, ...]``
- `bucket_ranges_of`: ``{"cases": [[n, coverage, weights or null], ...]}`` -> ``[[[s, e]...]...]``
- `assign`: ``{"config": <EdgeExperimentConfig JSON object>, "requests": [RouteRequest...]}``
  -> ``[{"variant", "reason", "experiment", "index", "hash"}, ...]``; a request is
  ``{"visitor", "slot", "now", "attributes"?, "sticky"?, "overrides"?, "preview_token"?}``
  where ``sticky`` is the raw sticky cookie value.
"""

from __future__ import annotations

import json
from typing import Any

from edge.router import RouteInput, bucket_ranges, gb_hash, parse_sticky, route
from fragments.experiment_codec import config_from_json


def hash_values(payload: str) -> str:
    cases: list[list[Any]] = json.loads(payload)["cases"]
    return json.dumps([gb_hash(str(s), str(v), int(ver)) for s, v, ver in cases])


def bucket_ranges_of(payload: str) -> str:
    cases: list[list[Any]] = json.loads(payload)["cases"]
    return json.dumps([bucket_ranges(int(n), float(cov), w) for n, cov, w in cases])


def assign(payload: str) -> str:
    doc: dict[str, Any] = json.loads(payload)
    config = config_from_json(json.dumps(doc["config"]))
    out: list[dict[str, Any]] = []
    for r in doc["requests"]:
        a = route(
            config,
            RouteInput(
                visitor_id=str(r["visitor"]),
                slot=str(r["slot"]),
                now=float(r["now"]),
                attributes=dict(r.get("attributes", {})),
                sticky=parse_sticky(r.get("sticky")),
                overrides=dict(r.get("overrides", {})),
                preview_token=r.get("preview_token"),
            ),
        )
        out.append(
            {
                "variant": a.variant,
                "reason": a.reason,
                "experiment": a.experiment,
                "index": a.variant_index,
                "hash": a.hash_value,
            }
        )
    return json.dumps(out, separators=(",", ":"))
