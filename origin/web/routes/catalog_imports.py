"""``POST /v1/catalog/imports``: import a product feed sent as the request body (ingest role).

The body is a Merchant Center feed (TSV, RSS/Atom XML or JSON Lines; the format is detected from
its first character) streamed to a temporary file, never held in memory, up to
`MAX_FEED_BYTES`; then imported by `origin.ingest.catalog_import.CatalogImporter`. The response
is the final report. Query parameters: ``mode`` (``full``, default, or ``delta``),
``reject_threshold`` (0..1, default 0.01), ``currency`` (ISO 4217, default USD).

Answers: 200 with the report; 401/403 without an ingest (or editor) token; 409 while another
import runs; 413 over the size limit; 422 for bad parameters, an unreadable feed, or an import
aborted by the reject threshold (the problem carries the report and its rejections); 503 when
Redis is down. ``GET /v1/catalog/imports/last`` returns the last import's report.
"""

from __future__ import annotations

import json
import re
import tempfile

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from origin.core import keys
from origin.core.store import Store
from origin.errors import StoreUnavailable
from origin.ingest.catalog_import import DEFAULT_REJECT_THRESHOLD
from origin.ingest.errors import FeedUnreadable, ImportAborted, ImportBusy
from origin.ingest.service import catalog_importer
from origin.web import problems
from origin.web.auth import require
from origin.web.state import OriginState

MAX_FEED_BYTES = 2 * 1024**3
IMPORT_TIMEOUT_S = 60.0
"""Bound of each Redis call of an import (a whole import may take longer)."""
_CURRENCY = re.compile(r"^[A-Z]{3}$")


async def post_import(request: Request) -> Response:
    who = require(request, "ingest")
    if isinstance(who, Response):
        return who
    state: OriginState = request.app.state.origin
    params = request.query_params
    mode = params.get("mode", "full")
    currency = params.get("currency", "USD").upper()
    invalid: dict[str, str] = {}
    if mode not in ("full", "delta"):
        invalid["mode"] = "full or delta"
    if not _CURRENCY.match(currency):
        invalid["currency"] = "an ISO 4217 code such as USD"
    try:
        threshold = float(params.get("reject_threshold", DEFAULT_REJECT_THRESHOLD))
        if not 0 <= threshold <= 1:
            raise ValueError
    except ValueError:
        invalid["reject_threshold"] = "a share between 0 and 1, such as 0.01"
        threshold = DEFAULT_REJECT_THRESHOLD
    if invalid:
        return problems.unprocessable(invalid)
    with tempfile.TemporaryFile(prefix="shelfedge-feed-") as spool:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_FEED_BYTES:
                return problems.problem(
                    413, "Feed too large", f"the feed is over {MAX_FEED_BYTES} bytes",
                    invalid={"body": f"at most {MAX_FEED_BYTES} bytes"},
                )  # fmt: skip
            spool.write(chunk)
        spool.seek(0)
        store = Store(state.store.redis, IMPORT_TIMEOUT_S)
        try:
            importer = await catalog_importer(
                store,
                state.slots,
                state.settings.purgers,
                currency=currency,
                judge_workers=state.settings.import_workers,
            )
            report = await importer.run(
                spool,
                source=f"POST by {who.name}",
                mode="delta" if mode == "delta" else "full",
                reject_threshold=threshold,
                total_bytes=size,
            )
        except ImportAborted as exc:
            return problems.problem(
                422, "Import aborted", str(exc), extensions={"report": exc.report.to_dict()}
            )
        except FeedUnreadable as exc:
            return problems.problem(422, "Feed unreadable", str(exc), invalid={"body": str(exc)})
        except ImportBusy as exc:
            return problems.problem(409, "Import running", str(exc), headers={"Retry-After": "30"})
        except StoreUnavailable as exc:
            return problems.unavailable(str(exc))
    return JSONResponse(report.to_dict(), headers={"Cache-Control": "no-store"})


async def last_import(request: Request) -> Response:
    who = require(request, "ingest")
    if isinstance(who, Response):
        return who
    state: OriginState = request.app.state.origin
    try:
        raw = await state.store.redis.get(keys.CATALOG_IMPORT_LAST_KEY)
    except StoreUnavailable as exc:  # pragma: no cover - the client raises its own errors
        return problems.unavailable(str(exc))
    if raw is None:
        return problems.not_found("import", "last")
    return JSONResponse(json.loads(raw), headers={"Cache-Control": "no-store"})
