"""Creating, editing, validating, starting/pausing/stopping and previewing experiments.

Handlers of the edit pages (guarded by `origin.web.admin.web.page`). Saving goes through
`ExperimentService` (the same transaction, validation, audit and publication as the API). The
form carries the version it was loaded at: a save against a newer stored version is refused
with "someone else changed this", the stored-vs-yours difference and a reload link. Adding or
removing a variant row without JavaScript is a form post with ``op`` that re-renders the form
without saving. ``POST /admin/validate`` is the dry run the page's script calls as the marketer
types. Stopping is final, so it goes through a confirmation page. Never logs form contents.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from starlette.responses import Response

from fragments.experiments import (
    CORRECTIONS,
    METRICS,
    SCORING_FIELDS,
    Experiment,
    ExperimentInvalid,
)
from origin.experiments.audit import diff
from origin.experiments.errors import ExperimentExists, TransitionNotAllowed, VersionMismatch
from origin.experiments.service import TRANSITIONS, Action
from origin.experiments.stats.corrections import CORRECTION_NAMES
from origin.web.admin import form as forms
from origin.web.admin.placement import error_slots, placement
from origin.web.admin.planning import plan_view
from origin.web.admin.validation import check, decode
from origin.web.admin.web import Ctx, Handler, error_page, json_reply, redirect, render

FLASH = {
    "created": "Draft created. Start it when you are ready.",
    "saved": "Saved.",
    "start": "Running: edges pick the change up within about 5 seconds.",
    "pause": "Paused: everyone sees control until you resume.",
    "stop": "Stopped: everyone sees control now. Results stay readable.",
}
FLASH_ERRORS = {
    "stale": "Someone else changed this experiment meanwhile: nothing was changed. "
    "Check it below and try again.",
    "transition": "That action is not possible in the current status.",
}


@dataclass(frozen=True, slots=True)
class ConflictRow:
    field: str
    saved: str
    yours: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """A save that lost the race: what is stored now against what was submitted."""

    current_version: int
    rows: tuple[ConflictRow, ...]


async def new_form(ctx: Ctx) -> Response:
    """GET /admin/new"""
    return await _edit_page(ctx, forms.blank(), None)


async def create(ctx: Ctx) -> Response:
    """POST /admin/new"""
    fields = replace(forms.from_form(ctx.form.multi_items()), status="draft", version="1")
    rerendered = await _row_op(ctx, fields, None)
    if rerendered is not None:
        return rerendered
    decoded = decode(fields)
    if decoded.experiment is None or decoded.problems:
        return await _edit_page(ctx, fields, None, problems=decoded.problems, status=422)
    try:
        outcome = await ctx.experiments.service.create(decoded.experiment, ctx.session.principal)
    except ExperimentInvalid as exc:
        return await _edit_page(ctx, fields, None, problems=exc.problems, status=422)
    except ExperimentExists as exc:
        return await _edit_page(ctx, fields, None, problems={"key": str(exc)}, status=409)
    return redirect(f"/admin/experiments/{outcome.experiment.key}?done=created")


async def edit_form(ctx: Ctx) -> Response:
    """GET /admin/experiments/{key}"""
    stored = await ctx.experiments.service.get(ctx.key)
    q = ctx.request.query_params
    return await _edit_page(
        ctx,
        forms.from_experiment(stored),
        stored,
        flash=FLASH.get(q.get("done", "")),
        flash_error=FLASH_ERRORS.get(q.get("error", "")),
    )


async def save(ctx: Ctx) -> Response:
    """POST /admin/experiments/{key}"""
    stored = await ctx.experiments.service.get(ctx.key)
    fields = replace(forms.from_form(ctx.form.multi_items()), key=stored.key)
    rerendered = await _row_op(ctx, fields, stored)
    if rerendered is not None:
        return rerendered
    decoded = decode(fields)
    expected = decoded.experiment.version if decoded.experiment else stored.version
    if decoded.experiment is None or decoded.problems:
        return await _edit_page(ctx, fields, stored, problems=decoded.problems, status=422)
    try:
        await ctx.experiments.service.update(
            ctx.key, expected, decoded.experiment, ctx.session.principal
        )
    except ExperimentInvalid as exc:
        return await _edit_page(ctx, fields, stored, problems=exc.problems, status=422)
    except VersionMismatch as exc:
        current = await ctx.experiments.service.get(ctx.key)
        return await _edit_page(
            ctx,
            fields,
            current,
            conflict=_conflict(current, decoded.experiment, exc.current),
            status=409,
        )
    return redirect(f"/admin/experiments/{ctx.key}?done=saved")


async def validate_form(ctx: Ctx) -> Response:
    """POST /admin/validate: the live dry run (JSON: ok, problems, and the duration plan)."""
    fields = forms.from_form(ctx.form.multi_items())
    checked = await check(ctx.experiments.service, fields, creating=ctx.form.get("mode") == "new")
    traffic = await ctx.experiments.results.slot_traffic(list(fields.slots), fields.primary_metric)
    plan = plan_view(fields, traffic)
    return json_reply(
        {
            "ok": checked.ok,
            "problems": checked.problems,
            "plan": {"reachable": plan.reachable, "message": plan.message, "detail": plan.detail},
        }
    )


def transition(action: Action) -> Handler:
    async def handler(ctx: Ctx) -> Response:
        if action == "stop" and ctx.form.get("confirmed") != "yes":
            return redirect(f"/admin/experiments/{ctx.key}/stop")
        version = ctx.form.get("version", "")
        if not (version.isascii() and version.isdigit()) or len(version) > 9:
            return error_page(
                ctx.request, 400, "Reload the page", "The form lost its version.", ctx.session
            )
        try:
            await ctx.experiments.service.transition(
                ctx.key, int(version), action, ctx.session.principal
            )
        except VersionMismatch:
            return redirect(f"/admin/experiments/{ctx.key}?error=stale")
        except TransitionNotAllowed:
            return redirect(f"/admin/experiments/{ctx.key}?error=transition")
        return redirect(f"/admin/experiments/{ctx.key}?done={action}")

    handler.__name__ = f"{action}_experiment"
    handler.__doc__ = f"POST /admin/experiments/{{key}}/{action}"
    return handler


async def confirm_stop(ctx: Ctx) -> Response:
    """GET /admin/experiments/{key}/stop: the kill switch's confirmation page."""
    stored = await ctx.experiments.service.get(ctx.key)
    return render(
        ctx.request,
        "confirm_stop.html.j2",
        ctx.session,
        experiment=stored,
        stoppable=stored.status in TRANSITIONS["stop"],
    )


async def preview(ctx: Ctx) -> Response:
    """POST /admin/experiments/{key}/preview: QA links forcing one variant."""
    variant = ctx.form.get("variant", "")
    try:
        link = await ctx.experiments.service.preview_link(
            ctx.key, variant, ctx.session.principal, ctx.experiments.public_edge_url
        )
    except ExperimentInvalid as exc:
        return error_page(ctx.request, 422, "Unknown variant", str(exc), ctx.session)
    stored = await ctx.experiments.service.get(ctx.key)
    return render(
        ctx.request,
        "preview.html.j2",
        ctx.session,
        experiment=stored,
        variant=variant,
        exchange_url=link.exchange_url,
        expires_at=time.strftime("%Y-%m-%d %H:%M", time.gmtime(link.expires)),
        config_version=link.config_version,
    )


async def rotate_preview(ctx: Ctx) -> Response:
    """POST /admin/preview/rotate: a new preview secret; every preview link and token issued
    so far stops working once edges refresh their configuration."""
    published = await ctx.experiments.service.rotate_preview(ctx.session.principal)
    return redirect(f"/admin?done=rotate-preview&version={published.version}")


async def _row_op(
    ctx: Ctx, fields: forms.ExperimentFields, stored: Experiment | None
) -> Response | None:
    """Re-render with a variant row added or removed (no-JS path); None when saving."""
    op = ctx.form.get("op", "save")
    if op == "add-variant":
        return await _edit_page(ctx, forms.with_variant_added(fields), stored)
    removed = op.removeprefix("remove-variant-")
    if op != removed and removed.isascii() and removed.isdigit() and len(removed) <= 3:
        index = int(removed)
        return await _edit_page(ctx, forms.with_variant_removed(fields, index), stored)
    return None


def _conflict(current: Experiment, yours: Experiment, version: int) -> Conflict:
    changes = diff(current, replace(yours, status=current.status))
    return Conflict(
        current_version=version,
        rows=tuple(
            ConflictRow(name, _compact(c.before), _compact(c.after))
            for name, c in sorted(changes.items())
        ),
    )


def _compact(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(", ", ": "))
    return text if len(text) <= 400 else text[:397] + "..."


async def _edit_page(
    ctx: Ctx,
    fields: forms.ExperimentFields,
    stored: Experiment | None,
    *,
    problems: Mapping[str, str] | None = None,
    conflict: Conflict | None = None,
    flash: str | None = None,
    flash_error: str | None = None,
    status: int = 200,
) -> Response:
    service = ctx.experiments.service
    error_slot_names = error_slots(len(fields.variants))
    placed: dict[str, list[str]] = {}
    summary: list[tuple[str, str]] = []
    for name, reason in (problems or {}).items():
        where = placement(name, error_slot_names)
        if where is None:
            summary.append((name, reason))
        else:
            placed.setdefault(where, []).append(reason if where == name else f"{name}: {reason}")
    templates = service.templates.names
    traffic = await ctx.experiments.results.slot_traffic(list(fields.slots), fields.primary_metric)
    lifecycle = []
    if stored is not None:
        lifecycle = [a for a in ("start", "pause", "stop") if stored.status in TRANSITIONS[a]]
    return render(
        ctx.request,
        "edit.html.j2",
        ctx.session,
        status=status,
        mode="new" if stored is None else "edit",
        fields=fields,
        stored=stored,
        editable=ctx.session.can_edit,
        errors=placed,
        summary=summary,
        problem_count=len(problems or {}),
        conflict=conflict,
        flash=flash,
        flash_error=flash_error,
        lifecycle=lifecycle,
        slot_choices=[(s.id, s.title) for s in service.slots.slots.values()],
        segment_choices=[(s.id, s.name) for s in await service.catalog.segments()],
        device_choices=forms.DEVICES,
        wrapper_choices=[t for t in templates if "wrapper" in t],
        card_choices=[t for t in templates if t.startswith("card")],
        scoring_fields=SCORING_FIELDS,
        max_variants=forms.MAX_VARIANTS,
        empty_variant=forms.VariantFields(weight="0"),
        metric_choices=METRICS,
        correction_choices=[(c, CORRECTION_NAMES[c]) for c in CORRECTIONS],
        plan=plan_view(fields, traffic),
    )
