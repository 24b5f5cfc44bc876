"""Main module of the assembled Cloudflare Worker (copied to `build/worker/src/entry.py`).

workerd looks the entrypoint classes up in the Worker's main module; ours live in
`edge.adapters.cloudflare`, so this module only re-exports them. It must never hold logic.
"""

from __future__ import annotations

from edge.adapters.cloudflare import Default

__all__ = ["Default"]
