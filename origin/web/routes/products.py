"""``GET /v1/products/{sku}``: one product document as JSON.

Anonymous callers get what a shopper may see: the SKU and its card (title, brand, price,
promo, a stock *state*, badges, links). The merchandising internals (margin, popularity,
units in stock and per location, event versions) need an admin viewer token: competitors
must not read margins or stock levels off the public API.
"""

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
        return problems.store_unavailable(exc)
    if product is None:
        return problems.not_found("sku", sku)
    card = asdict(product.card())
    if request.app.state.token_authority.authenticate(request.headers.get("authorization")):
        doc = asdict(product)
        doc["card"] = card
    else:
        doc = {"sku": product.sku, "card": card}
    return JSONResponse(doc, headers={"Cache-Control": "no-store"})
