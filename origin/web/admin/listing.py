"""The experiment list and the results page (read-only, any logged-in role).

The list shows each experiment's status, slots, variants with weights, last change (from the
audit log), exposures, the best challenger's uplift and a sample-ratio-mismatch badge. The
results page shows the per-variant table, a loud banner when the split is broken, the chart
and the audit log. Both read through `ExperimentService` and `ResultsReader`; never write.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.responses import Response

from fragments.experiments import Experiment
from origin.core.edge_targets import TargetState
from origin.experiments.audit import AuditEntry
from origin.web.admin.results_view import QuickResult, quick, results_view
from origin.web.admin.web import Ctx, render

METRICS = ("purchase", "add_to_cart", "click")
GRANULARITIES = ("day", "hour")
AUDIT_ROWS = 50


@dataclass(frozen=True, slots=True)
class ListRow:
    experiment: Experiment
    result: QuickResult
    changed_at: str
    changed_by: str


@dataclass(frozen=True, slots=True)
class AuditRow:
    at: str
    who: str
    role: str
    action: str
    version: int
    fields: str
    """The changed top-level fields, comma-separated."""
    config_version: int | None


def when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


async def experiment_list(ctx: Ctx) -> Response:
    """GET /admin"""
    service = ctx.experiments.service
    experiments = await service.list_all()

    async def row(e: Experiment) -> ListRow:
        doc, audit = await asyncio.gather(
            ctx.experiments.results.results(e.key, "purchase"), service.audit(e.key, 1)
        )
        last = audit[0] if audit else None
        return ListRow(
            e,
            quick(doc),
            when(last.at) if last else "",
            f"{last.who} ({last.action})" if last else "",
        )

    rows = await asyncio.gather(*(row(e) for e in experiments))
    current, targets = await asyncio.gather(
        ctx.experiments.configs.current_version(), ctx.experiments.targets.all()
    )
    return render(
        ctx.request,
        "list.html.j2",
        ctx.session,
        rows=rows,
        edge=EdgeView(current, tuple(_target_row(t, current) for t in targets)),
    )


@dataclass(frozen=True, slots=True)
class TargetRow:
    """One edge target on the list page: the version it holds and whether it is behind."""

    name: str
    version: int
    written: str
    behind: bool
    error: str
    """The last failed write (version, when, why), "" when the last write succeeded."""


@dataclass(frozen=True, slots=True)
class EdgeView:
    current: int
    """The version the origin serves at /v1/edge-config (0: nothing published)."""
    targets: tuple[TargetRow, ...]


def _target_row(t: TargetState, current: int) -> TargetRow:
    error = ""
    if t.failed_version is not None and t.failed_at is not None:
        error = f"v{t.failed_version} failed {when(t.failed_at)}: {t.error}"
    return TargetRow(
        t.target, t.version, when(t.written_at) if t.written_at else "never", t.version < current,
        error,
    )  # fmt: skip


async def results_page(ctx: Ctx) -> Response:
    """GET /admin/experiments/{key}/results"""
    q = ctx.request.query_params
    metric = q.get("metric", "purchase")
    metric = metric if metric in METRICS else "purchase"
    granularity = q.get("granularity", "day")
    granularity = granularity if granularity in GRANULARITIES else "day"
    stored = await ctx.experiments.service.get(ctx.key)
    doc, audit = await asyncio.gather(
        ctx.experiments.results.results(ctx.key, metric, granularity == "day"),
        ctx.experiments.service.audit(ctx.key, AUDIT_ROWS),
    )
    return render(
        ctx.request,
        "results.html.j2",
        ctx.session,
        experiment=stored,
        view=results_view(doc),
        metric=metric,
        granularity=granularity,
        metrics=METRICS,
        granularities=GRANULARITIES,
        audit=[_audit_row(e) for e in audit],
    )


def _audit_row(e: AuditEntry) -> AuditRow:
    return AuditRow(
        when(e.at), e.who, e.role, e.action, e.version, ", ".join(sorted(e.changes)),
        e.config_version,
    )  # fmt: skip
