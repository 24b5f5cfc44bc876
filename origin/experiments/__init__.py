"""Experiments on the origin: the config API, auth, audit, publishing to the edge, results.

Modules (one concept each):

- `store`: experiment definitions and their audit log in Redis, optimistic concurrency;
- `config_store`: the published, immutable edge configuration versions and the current one;
- `variants`: which bundle variants a published configuration needs (templates, scoring);
- `publishing`: builds variant bundles, then publishes a new configuration version;
- `kv_push`: writes each published version to Workers KV (the Worker's copy) and records
  which version the target holds (`origin.core.edge_targets`);
- `service`: the operations the API offers (create, update, start/pause/stop, publish,
  rollback, preview links), with validation against slots, segments, templates and the others;
- `auth`: bearer tokens with roles (viewer reads, editor writes);
- `audit`: the diff of changed fields an audit entry records;
- `stats`: pure results math, a module per concept (proportions, sample ratio, moments and
  CUPED, confidence sequences, corrections, analysis, decision, power);
- `judgement`: the always-valid analysis document (metrics, checks, decision, lift over time);
- `traffic`: a slot's recent traffic and baseline, for planning (pure);
- `results`: reads the event aggregates and applies `stats` and `judgement`;
- `api` / `edge_config_api`: the Starlette routes; `openapi`: their OpenAPI operations.

Exceptions (all `origin.errors.OriginError`)::

    ExperimentsError
     ├── ExperimentNotFound       no experiment with that key (404)
     ├── ExperimentExists         create with a key that is taken (409)
     ├── VersionMismatch          If-Match names a stale version (412; carries the current one)
     ├── TransitionNotAllowed     e.g. start a stopped experiment (409)
     ├── ConfigVersionNotFound    rollback to a version that was never published (404)
     ├── ConcurrentModification   the optimistic transaction kept losing (503, retriable)
     └── EdgePushFailed           Workers KV refused or kept failing a config write (recorded,
                                  never undoes the publication; `retriable` drives the retries)

Importing this package imports nothing else: the app, the recomputer and the CLI import the
modules they need. Nothing here logs a bearer token.
"""
