"""`python -m shelfedge seed` (the `shelfedge seed` command) against the suite's Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fragments.bundle import decode_bundle
from fragments.ids import FragmentKey
from origin.core import keys
from origin.core.catalog import Product
from origin.core.demo_catalog import generate_catalog
from origin.core.envelope import open_envelope
from origin.core.redis_client import RedisLike
from origin.core.redis_text import as_bytes, decode_map

REPO_ROOT = Path(__file__).resolve().parents[2]
SKUS = 60


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m shelfedge ARGS` with a clean shelfedge environment plus `env`."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SHELFEDGE_") and k not in ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")
    }
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "shelfedge", *args],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _product(redis: RedisLike, sku: str) -> Product:
    return Product.from_hash(decode_map(await redis.hgetall(keys.product_key(sku))))


async def test_seed_loads_the_catalog_and_builds_every_bundle(
    redis_client: RedisLike, redis_url: str
) -> None:
    result = run_cli("seed", "--seed", "7", REDIS_URL=redis_url, SHELFEDGE_CATALOG_SKUS=str(SKUS))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"seeded {SKUS} products, 7 segments, 42 bundles in ")
    assert "the freshness canary's product and segment with 6 bundles" in result.stdout
    assert await redis_client.scard(keys.CATALOG_SKUS_KEY) == SKUS + 1, "the demo SKUs + canary"
    expected = generate_catalog(7, SKUS).products
    assert await _product(redis_client, expected[3].sku) == expected[3]
    hero = FragmentKey("home-hero", "tech-enthusiasts", "control", "de-DE")
    stored = await redis_client.get(keys.bundle_key(hero))
    assert stored is not None
    bundle = decode_bundle(open_envelope(as_bytes(stored)).body)
    assert bundle.key == hero
    assert set(bundle.skus) <= {p.sku for p in expected}


async def test_seed_zero_is_a_seed_not_the_default(redis_client: RedisLike, redis_url: str) -> None:
    result = run_cli("seed", "--seed", "0", REDIS_URL=redis_url, SHELFEDGE_CATALOG_SKUS=str(SKUS))

    assert result.returncode == 0, result.stderr
    expected = generate_catalog(0, SKUS).products[0]
    assert await _product(redis_client, expected.sku) == expected


def test_seed_without_redis_url_fails_naming_it() -> None:
    result = run_cli("seed")

    assert result.returncode == 1
    assert "REDIS_URL" in result.stderr


def test_a_bad_variable_is_a_configuration_error_naming_it(redis_url: str) -> None:
    result = run_cli("seed", REDIS_URL=redis_url, SHELFEDGE_REDIS_TIMEOUT_MS="soon")

    assert result.returncode == 2
    assert "configuration error: SHELFEDGE_REDIS_TIMEOUT_MS" in result.stderr
    assert result.stdout == ""
