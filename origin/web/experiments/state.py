"""What the experiment routes reach through ``app.state.experiments``, built in the lifespan.

Wiring only: it never reads configuration from the environment (it gets `Settings`).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from fragments.slots import SlotCatalog
from origin.core.builder import BundleBuilder
from origin.core.config_store import ConfigReader
from origin.core.edge_targets import EdgeTargets
from origin.core.redis_client import RedisLike
from origin.core.store import Store
from origin.experiments.kv_push import ConfigPusher, KvTarget, WorkersKvWriter
from origin.experiments.publishing import Publisher
from origin.experiments.results import ResultsReader
from origin.experiments.service import ExperimentService
from origin.experiments.store import ExperimentStore
from origin.settings import Settings

ADMIN_TIMEOUT_S = 2.0
"""Admin calls read more than the hot path; they still never wait longer than this per call."""


@dataclass(frozen=True, slots=True)
class ExperimentsState:
    service: ExperimentService
    configs: ConfigReader
    results: ResultsReader
    public_edge_url: str
    """Base of preview links (the storefront's edge)."""
    targets: EdgeTargets
    """Which config version each edge target holds (the admin UI shows them)."""
    pusher: ConfigPusher | None = None
    """Writes each publication to Workers KV; None when SHELFEDGE_KV_* are not set."""
    http: httpx.AsyncClient | None = None
    """The pusher's HTTP client (closed by `aclose`)."""

    async def aclose(self) -> None:
        if self.http is not None:
            await self.http.aclose()


KV_TIMEOUT_S = 10.0
"""Per-request timeout of a Workers KV write."""


def _pusher(
    settings: Settings, configs: ConfigReader, targets: EdgeTargets
) -> tuple[ConfigPusher | None, httpx.AsyncClient | None]:
    if not (settings.kv_account_id and settings.kv_namespace_id and settings.kv_api_token):
        return None, None
    target = KvTarget(
        settings.kv_account_id,
        settings.kv_namespace_id,
        settings.kv_api_token,
        settings.kv_api_base,
    )
    http = httpx.AsyncClient(timeout=KV_TIMEOUT_S, trust_env=False)
    return ConfigPusher(WorkersKvWriter(target, http), configs, targets), http


def create_experiments_state(
    redis: RedisLike, store: Store, slots: SlotCatalog, settings: Settings
) -> ExperimentsState:
    timeout = max(settings.redis_timeout_ms / 1000, ADMIN_TIMEOUT_S)
    experiments = ExperimentStore(redis, timeout)
    catalog = Store(redis, max(store.timeout, ADMIN_TIMEOUT_S))
    publisher = Publisher(catalog, BundleBuilder(slots), settings.purgers)
    configs = ConfigReader(redis, settings.redis_timeout_ms / 1000)
    targets = EdgeTargets(redis, timeout)
    pusher, http = _pusher(settings, ConfigReader(redis, timeout), targets)
    service = ExperimentService(
        experiments,
        catalog,
        slots,
        publisher,
        after_publish=None if pusher is None else pusher.push_current,
    )
    return ExperimentsState(
        service=service,
        configs=configs,
        results=ResultsReader(redis, experiments, timeout),
        public_edge_url=settings.public_edge_url,
        targets=targets,
        pusher=pusher,
        http=http,
    )
