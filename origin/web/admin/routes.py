"""The admin UI's routes (HTML pages under ``/admin``), for the app and its OpenAPI document.

`ROUTES` lists (method, path, summary, role) once; `routes()` builds the Starlette routes from
it and `origin.web.admin.openapi` documents the same table, so the two cannot drift apart.
Literal paths come before ``{key}`` paths. Wiring only: no logic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from origin.web.admin import editing, listing, login, segment_rules
from origin.web.admin.web import page

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class AdminRoute:
    method: str
    path: str
    summary: str
    endpoint: Endpoint
    role: str
    """``none`` (login), ``viewer`` or ``editor``."""


def _table() -> tuple[AdminRoute, ...]:
    key = "/admin/experiments/{key}"
    return (
        AdminRoute("GET", "/admin", "Experiment list", page(listing.experiment_list), "viewer"),
        AdminRoute("GET", "/admin/login", "Login form (paste a token)", login.login_form, "none"),
        AdminRoute("POST", "/admin/login", "Log in: sets the session cookie", login.login, "none"),
        AdminRoute("POST", "/admin/logout", "Log out: deletes the session cookie", login.logout,
                   "none"),
        AdminRoute("GET", "/admin/new", "New experiment form",
                   page(editing.new_form, role="editor"), "editor"),
        AdminRoute("POST", "/admin/new", "Create a draft from the form",
                   page(editing.create, role="editor", write=True), "editor"),
        AdminRoute("POST", "/admin/preview/rotate", "Rotate the preview secret (voids links)",
                   page(editing.rotate_preview, role="editor", write=True), "editor"),
        AdminRoute("POST", "/admin/validate", "Dry-run validation of the form (JSON)",
                   page(editing.validate_form, write=True, api=True), "viewer"),
        AdminRoute("GET", key, "Experiment form (read-only for viewers)",
                   page(editing.edit_form), "viewer"),
        AdminRoute("POST", key, "Save the form (If-Match by the form's version)",
                   page(editing.save, role="editor", write=True), "editor"),
        AdminRoute("GET", key + "/stop", "Confirm stopping (the kill switch)",
                   page(editing.confirm_stop, role="editor"), "editor"),
        *(
            AdminRoute("POST", f"{key}/{action}", f"{action.capitalize()} the experiment",
                       page(editing.transition(action), role="editor", write=True), "editor")
            for action in ("start", "pause", "stop")
        ),
        AdminRoute("POST", key + "/preview", "Preview links forcing a variant",
                   page(editing.preview, role="editor", write=True), "editor"),
        AdminRoute("GET", key + "/results", "Results, sample-ratio check, chart and audit log",
                   page(listing.results_page), "viewer"),
        AdminRoute("GET", "/admin/segments", "Segment rules in force",
                   page(segment_rules.rules_page), "viewer"),
        AdminRoute("GET", "/admin/segments/edit", "Segment rules form",
                   page(segment_rules.edit_form, role="editor"), "editor"),
        AdminRoute("POST", "/admin/segments/edit", "Save the rules as a new version",
                   page(segment_rules.save, role="editor", write=True), "editor"),
        AdminRoute("GET", "/admin/segments/history", "Rule versions and who changed them",
                   page(segment_rules.history_page), "viewer"),
        AdminRoute("POST", "/admin/segments/rollback", "Make an earlier rules version current",
                   page(segment_rules.rollback, role="editor", write=True), "editor"),
        AdminRoute("GET", "/admin/segments/explain", "Explain a visitor's segment, rule by rule",
                   page(segment_rules.explain_page), "viewer"),
    )  # fmt: skip


ROUTES = _table()


def routes() -> list[Route]:
    return [Route(r.path, r.endpoint, methods=[r.method]) for r in ROUTES]
