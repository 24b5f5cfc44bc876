"""The experiment endpoints: the config API (`api`, its request/response helpers in `http`),
the edge-config endpoint (`edge_config_api`), their OpenAPI operations (`openapi`), and the
wiring the app's lifespan builds for them (`state`)."""

from __future__ import annotations
