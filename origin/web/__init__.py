"""The origin web service: a thin Starlette room over the catalog core and the experiment and
event services.

`app` builds the application (its lifespan owns the Redis client and the Kafka producer) from
`settings`; `routes` (bundles, fragments, products, health, the dev storefront), `experiments`
(the config API and the edge-config endpoint), `events` (the collector), `admin` (the marketers'
UI) and `auth` (bearer tokens and roles) are its endpoints; `problems` maps errors to RFC 9457
responses in one place; `openapi` assembles the document; `serve` runs uvicorn.

Nothing outside the web service and the entry point imports it.
"""

from __future__ import annotations
