"""OpenAPI entries of the admin UI's pages (merged by `origin.web.openapi`); never serves.

The admin pages are HTML for browsers, not part of the JSON API: each entry is tagged
``admin-ui`` and says so. They authenticate with the ``se_admin`` session cookie (see
`origin.web.admin.session`); posts are HTML forms carrying a CSRF nonce.
"""

from __future__ import annotations

import re
from typing import Any

from origin.web.admin.routes import ROUTES
from origin.web.admin.session import COOKIE_NAME

TAG = "admin-ui"
TAG_DESCRIPTION = (
    "The marketers' admin web UI: server-rendered HTML pages and form posts for browsers, "
    "not part of the JSON API. Session cookie se_admin; forms carry a CSRF nonce."
)
SECURITY_SCHEME = {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME}
"""The ``adminSession`` security scheme the admin entries name."""
_HTML: dict[str, Any] = {"text/html": {}}
_FORMS = ("/admin/new", "/admin/experiments/{key}")


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": _HTML}


def _responses(method: str, role: str, path: str) -> dict[str, Any]:
    if path == "/admin/validate":
        return {
            "200": {"description": "{ok, problems: {field: reason}}",
                    "content": {"application/json": {}}},
            "401": {"description": "No valid session"},
            "403": _html("The request did not carry the session's CSRF nonce"),
        }  # fmt: skip
    out: dict[str, Any] = {}
    if method == "GET":
        out["200"] = _html("HTML page")
        out["303"] = {"description": "Redirect: to the login page (no session) or onwards"}
    else:
        out["303"] = {"description": "Done (or no session): redirect to the next page"}
    if method == "POST" and path in _FORMS:
        out["200"] = _html("The form again, with a variant row added or removed")
        out["409"] = _html("Someone else changed it (shown as a difference), or the key is taken")
        out["422"] = _html("The form with each problem next to its field")
    if method == "POST" or role == "editor":
        out["403"] = _html("A viewer session, or a form without its CSRF nonce")
    if path == "/admin/segments/edit" and method == "POST":
        out["409"] = _html("The rules changed after the form was opened: nothing saved")
        out["422"] = _html("The form with each problem next to its field")
    if path == "/admin/segments/rollback":
        out["400"] = _html("The form lost its version")
        out["404"] = _html("No such rules version")
    if path == "/admin/segments/explain":
        out["422"] = _html("Not a visitor id")
    if path == "/admin/login" and method == "POST":
        out["401"] = _html("Unknown token: the form again")
    if "{key}" in path:
        out["404"] = _html("Unknown experiment")
    return out


def admin_operations() -> dict[str, dict[str, dict[str, Any]]]:
    """Path -> method -> operation, for every admin route."""
    paths: dict[str, dict[str, dict[str, Any]]] = {}
    for r in ROUTES:
        operation: dict[str, Any] = {
            "summary": r.summary,
            "description": "HTML page for browsers (admin UI), not part of the JSON API.",
            "tags": [TAG],
            "responses": _responses(r.method, r.role, r.path),
        }
        if r.role != "none":
            # Anonymous requests are part of the contract: pages redirect them to the login
            # form (303), /admin/validate answers 401.
            operation["security"] = [{"adminSession": []}, {}]
        params = re.findall(r"\{([^}]+)\}", r.path)
        if params:
            operation["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ]
        paths.setdefault(r.path, {})[r.method.lower()] = operation
    return paths
