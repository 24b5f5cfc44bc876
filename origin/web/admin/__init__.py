"""The marketers' admin web UI: server-rendered pages over the experiment service.

Pages (``/admin``): login with a pasted bearer token, the experiment list, the create/edit form
with live validation, start / pause / stop (stop through a confirmation page), preview links,
and results with the decision and its reason, always-valid lifts per metric, the checks, the
lift's interval over time, a conversion-over-time chart and the audit log. Plain
HTML forms that work without JavaScript; ``/static/admin.js`` adds live validation and variant
rows without reloads. No build step.

Modules (one concept each):

- `session`: the signed, HttpOnly, SameSite=Strict session cookie, CSRF nonce, origin check;
- `web`: the page guard (session, role, CSRF), form bodies, rendering, error pages;
- `form`: HTML form fields <-> the API's experiment document (pure); `placement`: which
  field each problem is shown next to;
- `validation`: the dry run the live validation calls (reads only);
- `results_view` / `chart` / `lift_chart`: results in words and numbers, the inline SVG
  charts (pure); `planning`: the form's sample-size and duration estimate (pure);
- `login`, `listing`, `editing`: the handlers; `routes`: the table; `openapi`: its entries.

Pages call `origin.experiments.service.ExperimentService` and
`origin.experiments.results.ResultsReader` directly, with the logged-in principal, so every
change has the API's validation, audit entry and publication. Nothing here logs a request, a
form or a token, and no page ever contains a bearer token.
"""
