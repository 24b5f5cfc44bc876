"""Functions the Pyodide runner tests call both under CPython and inside Pyodide.

Each takes one str and returns a str, so the two results can be compared byte for byte.
They must stay deterministic (no clocks, randomness or set ordering in their output) and import
only the stdlib, jinja2/markupsafe and `fragments`: everything Pyodide has here.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import sys
import time

import markupsafe
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

CARD_TEMPLATE = """\
<article class="card" data-sku="{{ card.sku }}" data-meta='{{ card.meta | tojson }}'>
  <a href="{{ card.url }}">{{ card.title | truncate(40) }}</a>
  <p class="price">{{ "%.2f" | format(card.price_cents / 100) }} {{ card.currency }}</p>
  {%- for badge in card.badges | sort %}
  <span class="badge badge-{{ loop.index }}">{{ badge | upper }}</span>
  {%- else %}
  <span class="badge badge-none">{{ trusted }}</span>
  {%- endfor %}
  <!-- hidden: [{{ card.__class__ }}] -->
</article>
"""


def render_card(payload: str) -> str:
    """Render a product card from JSON with a sandboxed, autoescaped Jinja2 environment."""
    card = json.loads(payload)
    environment = SandboxedEnvironment(autoescape=True)
    html = environment.from_string(CARD_TEMPLATE).render(
        card=card, trusted=markupsafe.Markup("<em>new</em>")
    )
    try:
        environment.from_string("{{ card.__class__.__mro__ }}").render(card=card)
        verdict = "sandbox: not blocked"
    except SecurityError as exc:
        verdict = f"sandbox: blocked ({type(exc).__name__}: {exc})"
    escaped = markupsafe.escape(card.get("title", ""))
    return f"{html}<!-- {verdict} -->\n<!-- escape: {escaped} -->\n"


def runtime_facts(payload: str) -> str:
    """JSON facts about the interpreter and the template packages it imported."""
    return json.dumps(
        {
            "python_version": platform.python_version(),
            "platform": sys.platform,
            "jinja2": importlib.metadata.version("jinja2"),
            "markupsafe": importlib.metadata.version("markupsafe"),
            "markupsafe_escape": (
                "speedups" if "markupsafe._speedups" in sys.modules else "pure-python"
            ),
            "payload": payload,
        },
        sort_keys=True,
    )


def topic_names(payload: str) -> str:
    """The Kafka topics `fragments.topics` defines, as JSON (imports it where it runs)."""
    import fragments.topics  # noqa: PLC0415 - the import itself is what this probe checks

    return json.dumps([[topic.name, topic.partitions] for topic in fragments.topics.ALL_TOPICS])


def fail(payload: str) -> str:
    """Raise from a nested frame, so a traceback has something to show."""

    def check_stock(sku: str) -> str:
        raise ValueError(f"probe failure: {sku}")

    return check_stock(payload)


def noisy_echo(payload: str) -> str:
    """Print to stdout and stderr (which must not corrupt the runner's protocol), return payload."""
    print(f"noisy stdout: {payload}")
    print(f"noisy stderr: {payload}", file=sys.stderr)
    return payload


def echo(payload: str) -> str:
    """Return the payload unchanged: measures the runner's per-call overhead."""
    return payload


def spin(payload: str) -> str:
    """Busy-loop for `payload` seconds (a bounded stand-in for a hung call)."""
    deadline = time.monotonic() + float(payload)
    while time.monotonic() < deadline:
        pass
    return payload
