"""`shelfedge import catalog` against the suite's Redis: from a file and from a URL, its final
report, rejected lines, the reject threshold's exit status, and --delta."""

from __future__ import annotations

import gzip
import http.server
import json
import re
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from redis.asyncio import Redis

from origin.core import keys
from origin.core.redis_text import as_text
from origin.ingest import catalog_import, judging
from origin.ingest.synthetic_feed import item_id, synthetic_items, tsv_lines
from tests.shelfedge.test_cli import run_cli

BAD_ROW = "BAD-1\tNo price\t\thttps://x.example/p\thttps://x.example/i.jpg\t\t\tin_stock\n"


def feed(tmp_path: Path, count: int, extra: str = "", name: str = "feed.tsv") -> Path:
    path = tmp_path / name
    path.write_text("".join(tsv_lines(synthetic_items(count))) + extra, encoding="utf-8")
    return path


class _Files(http.server.SimpleHTTPRequestHandler):
    """Serves the folder; ``/moved/NAME`` answers 302 to ``/NAME`` (as feed hosts redirect)."""

    def do_GET(self) -> None:
        if self.path.startswith("/moved/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/moved"))
            self.end_headers()
            return
        super().do_GET()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    handler = partial(_Files, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_import_a_file_reports_counts_and_rejected_lines(
    redis_client: Redis, redis_url: str, tmp_path: Path
) -> None:
    path = feed(tmp_path, 150, BAD_ROW)
    done = run_cli("import", "catalog", str(path), REDIS_URL=redis_url)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "read 151, created 150, changed 0, unchanged 0, removed 0, rejected 1" in done.stdout
    assert "rejected line 152 (id 'BAD-1'): price: missing" in done.stdout
    assert await redis_client.scard(keys.CATALOG_SKUS_KEY) == 150
    again = run_cli("import", "catalog", str(path), REDIS_URL=redis_url)
    assert "created 0, changed 0, unchanged 150" in again.stdout
    assert "purges 0" in again.stdout


async def test_the_reject_threshold_aborts_with_status_1_and_applies_nothing(
    redis_client: Redis, redis_url: str, tmp_path: Path
) -> None:
    path = feed(tmp_path, 20, BAD_ROW)  # 1 of 21 rejected: above 1 %
    done = run_cli("import", "catalog", str(path), REDIS_URL=redis_url)
    assert done.returncode == 1
    assert "import aborted" in done.stdout
    assert "nothing applied" in done.stdout
    assert await redis_client.scard(keys.CATALOG_SKUS_KEY) == 0
    lenient = run_cli(
        "import", "catalog", str(path), "--reject-threshold", "0.1", REDIS_URL=redis_url
    )
    assert lenient.returncode == 0, lenient.stdout
    assert await redis_client.scard(keys.CATALOG_SKUS_KEY) == 20


async def test_import_from_a_url_and_a_delta(
    redis_client: Redis, redis_url: str, tmp_path: Path, served: str
) -> None:
    feed(tmp_path, 80)
    done = run_cli("import", "catalog", f"{served}/moved/feed.tsv", REDIS_URL=redis_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "created 80" in done.stdout  # through the redirect
    feed(tmp_path, 5, name="delta.tsv")
    delta = run_cli(
        "import", "catalog", "--delta", str(tmp_path / "delta.tsv"), REDIS_URL=redis_url
    )
    assert "delta import" in delta.stdout
    assert "removed 0" in delta.stdout
    assert await redis_client.scard(keys.CATALOG_SKUS_KEY) == 80
    missing = run_cli("import", "catalog", f"{served}/nope.tsv", REDIS_URL=redis_url)
    assert missing.returncode == 1
    assert "a feed URL that answers 200" in missing.stderr
    assert "404" in missing.stderr


async def test_a_gzip_feed_from_a_url_and_gzip_lists_from_a_file(
    redis_client: Redis, redis_url: str, tmp_path: Path, served: str
) -> None:
    # Served as a file (no Content-Encoding): the importer recognises gzip by its magic bytes.
    plain = feed(tmp_path, 60)
    (tmp_path / "products.tsv.gz").write_bytes(gzip.compress(plain.read_bytes()))
    done = run_cli("import", "catalog", f"{served}/products.tsv.gz", REDIS_URL=redis_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "read 60, created 60" in done.stdout
    skus = [f"FEED-{n:06d}" for n in (3, 1, 2)]
    line = {"segment": "tech-enthusiasts", "name": "top", "version": 7, "items": skus}
    lists = tmp_path / "lists.jsonl.gz"
    lists.write_bytes(gzip.compress((json.dumps(line) + "\n").encode()))
    imported = run_cli("import", "lists", str(lists), REDIS_URL=redis_url)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "lists: read 1, created 1" in imported.stdout
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(lists.read_bytes()[:20])
    refused = run_cli("import", "lists", str(broken), REDIS_URL=redis_url)
    assert refused.returncode != 0
    assert "gzip feed is corrupt or truncated" in refused.stdout + refused.stderr


async def test_a_feed_urls_credentials_are_never_shown_or_stored(
    redis_client: Redis, redis_url: str, tmp_path: Path, served: str
) -> None:
    feed(tmp_path, 10)
    secret_url = served.replace("http://", "http://feedbot:pa55word@") + "/feed.tsv?token=t0ken"
    done = run_cli("import", "catalog", secret_url, REDIS_URL=redis_url)
    assert done.returncode == 0, done.stdout + done.stderr
    stored = await redis_client.get(keys.CATALOG_IMPORT_LAST_KEY)
    assert stored is not None
    for text in (done.stdout + done.stderr, as_text(stored)):
        assert "pa55word" not in text
        assert "t0ken" not in text
    assert "feedbot:***@" in done.stdout
    missing = run_cli(
        "import", "catalog", secret_url.replace("feed.tsv", "nope.tsv"), REDIS_URL=redis_url
    )
    assert missing.returncode == 1
    assert ": 404 " in missing.stderr
    assert "pa55word" not in missing.stdout + missing.stderr


async def test_workers_validate_a_large_feed_and_a_bad_count_is_refused(
    redis_client: Redis, redis_url: str, tmp_path: Path
) -> None:
    """A feed of two large chunks: one validated in the command's process, the other in a
    worker process (spawned from the real command; ``--workers`` wins over the setting); the
    same catalog as validated in the command's process alone (SHELFEDGE_IMPORT_WORKERS=0)."""
    second = judging.POOL_MIN_ITEMS + 500
    items = catalog_import.STAGE_CHUNK + second
    path = feed(tmp_path, items, BAD_ROW)
    pooled = run_cli(  # the option wins over the setting
        "import", "catalog", str(path), "--workers", "1",
        REDIS_URL=redis_url, SHELFEDGE_IMPORT_WORKERS="0",
    )  # fmt: skip
    assert pooled.returncode == 0, pooled.stdout
    assert f"created {items}, changed 0" in pooled.stdout
    assert "rejected 1;" in pooled.stdout
    in_worker = re.search(r"(\d+) items validated in worker processes", pooled.stdout)
    assert in_worker is not None, pooled.stdout
    # Whichever chunk is compared first is judged here (the two comparisons race on a cluster).
    assert int(in_worker[1]) in (second + 1, catalog_import.STAGE_CHUNK)
    documents = [await redis_client.hgetall(keys.product_key(item_id(n))) for n in (7, items - 3)]
    await redis_client.flushall()
    here = run_cli(
        "import", "catalog", str(path), REDIS_URL=redis_url, SHELFEDGE_IMPORT_WORKERS="0"
    )
    assert here.returncode == 0, here.stdout
    assert "validated in worker processes" not in here.stdout
    assert [await redis_client.hgetall(keys.product_key(item_id(n))) for n in (7, items - 3)] == (
        documents
    )
    assert all(documents)
    for bad in ("-1", "many", "33"):
        refused = run_cli("import", "catalog", str(path), "--workers", bad, REDIS_URL=redis_url)
        assert refused.returncode == 2
        assert "--workers" in refused.stderr
