"""shelfedge edge: what the CDN executes on every request.

The core is pure Python over the standard library and `fragments`, importable under CPython,
Pyodide and the WASI build, and never performs I/O:

- `edge.context`, `edge.router`, `edge.cache`, `edge.rerank`, `edge.assemble`: the shopper's
  context, experiment routing, the cache state machine, the session rerank and the HTML;
- `edge.flow`: the per-request decision, a generator of the effects of `edge.transport` (cache
  read, cache write, origin fetch; typed replies), with the sync and async drivers that carry
  them out on a transport; `edge.memory.MemoryTransport` is the in-memory transport;
- `edge.surface`: the ``/se/*`` route table, body limits and parsing; `edge.browser_events`
  attributes beacons; `edge.event_buffer` is the policy for events leaving for the origin;
- `edge.config`: the edge configuration and its JSON parser; `edge.vectors`: the golden vector
  runner; `edge.errors`: the exception tree (drawn there).

Adapters implement the transport over a platform's I/O and stay thin: `edge.adapters.cloudflare`
(Workers Cache API, KV, fetch), `edge.adapters.local_server` (memory store, httpx), and the WASI
entry `edge.wasi_main` with its CGI mode `edge.wasi_cgi` (a data directory). Adapters touch
`js`, `workers`, httpx or sockets; nothing in the core imports an adapter.
"""

from __future__ import annotations
