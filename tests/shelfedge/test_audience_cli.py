"""`shelfedge import audience NAME PATH` against the suite's Redis (single and cluster): the
visitors enter (or leave) the audience and their segments are decided again; a bad line is
named and nothing is imported."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from origin.context.rules import parse_rules
from origin.context.store import ContextStore
from origin.core import keys
from tests.origin.context.test_rules import RULES
from tests.shelfedge.test_cli import run_cli

VIP = {
    "name": "vip",
    "segment": "vip-shoppers",
    "when": [{"feature": "audience:spring_vip", "op": "eq", "value": True}],
}


async def test_a_file_of_visitor_ids_enters_and_leaves_an_audience(
    redis_client: Redis, redis_url: str, tmp_path: Path
) -> None:
    store = ContextStore(redis_client)
    await store.put_rules(parse_rules({**RULES, "rules": [VIP, *RULES["rules"]]}))
    path = tmp_path / "spring_vip.txt"
    visitors = [f"visitor-{n:03d}" for n in range(40)]
    path.write_text("# exported from the CDP\n" + "\n".join(visitors) + "\n\n", encoding="utf-8")

    done = run_cli("import", "audience", "spring_vip", str(path), REDIS_URL=redis_url)

    assert done.returncode == 0, done.stderr + done.stdout
    assert "audience spring_vip: 40 visitors entered (40 lines)" in done.stdout
    for visitor in (visitors[0], visitors[-1]):
        assignment = await store.assignment(visitor)
        assert assignment is not None
        assert assignment.explanation == "matched rule 1 (vip)"
        assert await redis_client.ttl(keys.visitor_audiences_key(visitor)) > 0

    left = run_cli("import", "audience", "spring_vip", str(path), "--exited", REDIS_URL=redis_url)
    assert left.returncode == 0, left.stderr
    after = await store.assignment(visitors[7])
    assert after is not None
    assert after.segment == "everyone"


async def test_a_bad_line_is_named_and_nothing_is_imported(
    redis_client: Redis, redis_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "list.txt"
    path.write_text("good-visitor-1\nnot a visitor\n", encoding="utf-8")

    done = run_cli("import", "audience", "spring_vip", str(path), REDIS_URL=redis_url)

    assert done.returncode == 1
    assert f"{path} line 2: 'not a visitor' is not a visitor id" in done.stderr
    assert "nothing imported" in done.stderr
    assert [k async for k in redis_client.scan_iter(match="*good-visitor-1*")] == []
