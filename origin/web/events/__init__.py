"""The event endpoint: ``POST /v1/events`` (`collector`), its per-client rate limit
(`ratelimit`) and its OpenAPI operation (`openapi`)."""

from __future__ import annotations
