"""What the experiment routes reach through ``app.state.experiments``, built in the lifespan.

Wiring only: it never reads configuration from the environment (it gets `Settings`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fragments.slots import SlotCatalog
from origin.core.builder import BundleBuilder
from origin.core.config_store import ConfigReader
from origin.core.redis_client import RedisLike
from origin.core.store import Store
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


def create_experiments_state(
    redis: RedisLike, store: Store, slots: SlotCatalog, settings: Settings
) -> ExperimentsState:
    timeout = max(settings.redis_timeout_ms / 1000, ADMIN_TIMEOUT_S)
    experiments = ExperimentStore(redis, timeout)
    catalog = Store(redis, max(store.timeout, ADMIN_TIMEOUT_S))
    publisher = Publisher(catalog, BundleBuilder(slots), settings.purgers)
    service = ExperimentService(experiments, catalog, slots, publisher)
    return ExperimentsState(
        service=service,
        configs=ConfigReader(redis, settings.redis_timeout_ms / 1000),
        results=ResultsReader(redis, experiments, timeout),
        public_edge_url=settings.public_edge_url,
    )
