"""shelfedge edge: what the CDN executes on every request.

The core (context, routing, cache state machine, rerank, assembly, the request decision) is pure
Python over the standard library and `fragments`, importable under CPython and Pyodide, and never
performs I/O: it returns decisions that an adapter carries out. Adapters (`edge.adapters.*`)
touch `js`, `workers`, httpx or sockets; nothing imports an adapter.

Exceptions::

    EdgeError
     └── BadEdgeInput    a decision request (WASI stdin, test vector) that is not well formed
"""

from __future__ import annotations
