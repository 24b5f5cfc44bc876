"""shelfedge fragments: the shared contracts: the id grammar (`ids`), cache tags (`tags`), slots,
the bundle format, the experiment model and wire events, cache headers, sandboxed rendering.

The one package every other package depends on. It must import under Pyodide (Python 3.14 in a
Cloudflare Python Worker): standard library and jinja2 only, no I/O at import time.

Its exception tree is drawn in `fragments.errors`.
"""

from __future__ import annotations
