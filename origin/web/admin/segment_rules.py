"""The segment-rules pages: the rules in force, the edit form, version history with rollback,
and the explain tool.

Handlers guarded by `origin.web.admin.web.page` (session, role, CSRF). They call
`origin.context.store.ContextStore` with the same validation as ``PUT /v1/segment-rules``
(`origin.context.rules.rule_problems`: every problem, each shown next to its field through
`origin.web.admin.rules_form.placement`). The form carries the version it was loaded at: a save
after someone else's is refused, nothing saved. Saves and rollbacks record the logged-in name
in the rules history. The explain tool evaluates the current rules for one visitor id, rule by
rule and condition by condition. Never logs form contents or visitor ids.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from starlette.responses import Response

from fragments.wire_events import VISITOR
from origin.context.rules import (
    NUMBER_FEATURES,
    STRING_FEATURES,
    parse_rules,
    rule_problems,
)
from origin.context.store import ContextStore
from origin.web.admin import rules_form
from origin.web.admin.web import Ctx, error_page, redirect, render
from origin.web.state import OriginState

HISTORY_SHOWN = 50
FLASH = {
    "saved": "Saved as a new version: the context processor decides with it from its next batch.",
    "rollback": "Rolled back: that version is in force again.",
}
OP_LABELS = (
    ("eq", "equals"),
    ("ne", "differs from"),
    ("gt", "more than"),
    ("gte", "at least"),
    ("lt", "less than"),
    ("lte", "at most"),
)
"""Every op of `origin.context.rules.NUMBER_OPS` (strings and audiences take eq and ne)."""
FEATURE_HINTS = (
    *NUMBER_FEATURES,
    *STRING_FEATURES,
    "views:<category>",
    "interest:<category>",
    "audience:<key>",
)


def _store(ctx: Ctx) -> ContextStore:
    state: OriginState = ctx.request.app.state.origin
    return ContextStore(
        state.store.redis,
        ttl_seconds=state.settings.profile_ttl_seconds,
        timeout=max(state.store.timeout, 2.0),
    )


async def _segments(ctx: Ctx) -> list[tuple[str, str]]:
    state: OriginState = ctx.request.app.state.origin
    return [(s.id, s.name) for s in await state.store.segments()]


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


async def rules_page(ctx: Ctx) -> Response:
    """GET /admin/segments"""
    store = _store(ctx)
    version, rules = await store.current_rules()
    history = await store.rules_history()
    q = ctx.request.query_params
    return render(
        ctx.request,
        "segments.html.j2",
        ctx.session,
        version=version,
        rules=rules,
        last=history[0] if history else None,
        when=_when,
        flash=FLASH.get(q.get("done", "")),
    )


async def edit_form(ctx: Ctx) -> Response:
    """GET /admin/segments/edit"""
    version, rules = await _store(ctx).current_rules()
    return await _edit_page(ctx, rules_form.from_rules(rules, version))


async def save(ctx: Ctx) -> Response:
    """POST /admin/segments/edit"""
    store = _store(ctx)
    fields = rules_form.from_form(ctx.form.multi_items())
    converted = rules_form.to_document(fields)
    known = frozenset(s for s, _ in await _segments(ctx))
    problems = {**rule_problems(converted.document, known or None), **converted.problems}
    current, _ = await store.current_rules()
    if fields.base_version != str(current):
        return await _edit_page(
            ctx,
            fields,
            status=409,
            flash_error=f"Version {current} was saved after you opened this form, so nothing "
            "was saved. Open the current version and apply your changes again.",
        )
    if problems:
        return await _edit_page(ctx, fields, problems=problems, converted=converted, status=422)
    version = await store.put_rules(
        parse_rules(converted.document, known or None), by=ctx.session.principal.name
    )
    return redirect(f"/admin/segments?done=saved&version={version}")


async def history_page(ctx: Ctx) -> Response:
    """GET /admin/segments/history"""
    store = _store(ctx)
    current, _ = await store.current_rules()
    count = await store.rules_version_count()
    versions = [
        (v, await store.rules_version(v)) for v in range(count, max(0, count - HISTORY_SHOWN), -1)
    ]
    return render(
        ctx.request,
        "segments_history.html.j2",
        ctx.session,
        current=current,
        versions=versions,
        history=await store.rules_history(),
        when=_when,
    )


async def rollback(ctx: Ctx) -> Response:
    """POST /admin/segments/rollback"""
    raw = ctx.form.get("version", "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        return error_page(ctx.request, 400, "Reload the page", "The form lost its version.")
    try:
        await _store(ctx).rollback_rules(int(raw), by=ctx.session.principal.name)
    except KeyError:
        return error_page(
            ctx.request, 404, "No such version", f"Version {raw} was never saved.", ctx.session
        )
    return redirect(f"/admin/segments?done=rollback&version={raw}")


async def explain_page(ctx: Ctx) -> Response:
    """GET /admin/segments/explain?visitor=..."""
    visitor = ctx.request.query_params.get("visitor", "").strip()
    problem = ""
    found = None
    if visitor:
        if VISITOR.fullmatch(visitor):
            found = await _store(ctx).explain(visitor)
        else:
            problem = "A visitor id is 1-64 characters of A-Z, a-z, 0-9, - and _."
    return render(
        ctx.request,
        "segments_explain.html.j2",
        ctx.session,
        status=422 if problem else 200,
        visitor=visitor,
        problem=problem,
        found=found,
        when=_when,
    )


async def _edit_page(
    ctx: Ctx,
    fields: rules_form.RulesFields,
    *,
    problems: Mapping[str, str] | None = None,
    converted: rules_form.Converted | None = None,
    flash_error: str | None = None,
    status: int = 200,
) -> Response:
    placed: dict[str, list[str]] = {}
    summary: list[tuple[str, str]] = []
    for where, reason in (problems or {}).items():
        name = where if converted is None else rules_form.placement(where, converted)
        if name is None:
            summary.append((where, reason))
        else:
            placed.setdefault(name, []).append(reason)
            summary.append((where, reason))
    return render(
        ctx.request,
        "segments_edit.html.j2",
        ctx.session,
        status=status,
        fields=rules_form.with_blank_rows(fields),
        errors=placed,
        summary=summary,
        flash_error=flash_error,
        segment_choices=await _segments(ctx),
        feature_hints=FEATURE_HINTS,
        op_choices=OP_LABELS,
    )
