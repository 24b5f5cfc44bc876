"""shelfedge fragments: slots, the bundle format, keys and tags, wire events, cache headers,
rendering.

The one package every other package depends on. It must import under Pyodide (Python 3.14 in a
Cloudflare Python Worker): standard library and jinja2 only, no I/O at import time.

Exceptions::

    FragmentsError
     ├── InvalidIdentifier   a slot, segment, variant, locale or SKU id that is not well formed
     ├── SlotConfigError     the slot config file is invalid (names the file, the slot, the reason)
     ├── BundleFormatError   bytes that are not a bundle of a supported wire version
     ├── RenderError         a template failed (undefined variable, sandbox violation)
     └── WireEventInvalid    an experiment event that is not well formed (names the field)
"""

from __future__ import annotations
