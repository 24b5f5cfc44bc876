"""``GET /v1/products/{sku}``: one product document as JSON."""

from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fragments.errors import InvalidIdentifier
from fragments.ids import check_sku
from origin.errors import StoreUnavailable
from origin.web import problems
from origin.web.state import OriginState


async def get_product(request: Request) -> Response:
    state: OriginState = request.app.state.origin
    try:
        sku = check_sku(request.path_params["sku"])
    except InvalidIdentifier as exc:
        return problems.unprocessable({"sku": str(exc)})
    try:
        product = await state.store.product(sku)
    except StoreUnavailable as exc:
        state.metrics.store_errors.inc()
        return problems.unavailable(str(exc))
    if product is None:
        return problems.not_found("sku", sku)
    doc = asdict(product)
    doc["card"] = asdict(product.card())
    return JSONResponse(doc, headers={"Cache-Control": "no-store"})
