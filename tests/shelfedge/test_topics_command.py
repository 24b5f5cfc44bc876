"""``shelfedge topics check | create``: the pure plan, table-driven, then the command against the
session's Apache Kafka node (topics deleted first, created by the command, checked; a
replication factor the cluster cannot give refused by name)."""

from __future__ import annotations

import pytest

from fragments.topics import ALL_TOPICS, INVENTORY, PRICE, Topic
from shelfedge.localstack import ApacheKafka
from shelfedge.topic_plan import TopicRow, TopicShape, parse_partitions, plan_topics
from tests.support.cli import run_shelfedge
from tests.support.kafka_engines import delete_topics, empty_topics

TWO = (INVENTORY, PRICE)


@pytest.mark.parametrize(
    ("existing", "replication", "chosen", "expected"),
    [
        ({}, 3, {},
         [TopicRow("inventory.v1", "create", 6, 3), TopicRow("price.v1", "create", 6, 3)]),
        ({"inventory.v1": TopicShape(6, 3)}, 3, {"price.v1": 24},
         [TopicRow("inventory.v1", "ok", 6, 3), TopicRow("price.v1", "create", 24, 3)]),
        ({"inventory.v1": TopicShape(12, 3), "price.v1": TopicShape(2, 1)}, 3, {},
         [TopicRow("inventory.v1", "ok", 12, 3),
          TopicRow("price.v1", "warn", 2, 1,
                   "2 partitions, fewer than 6: fewer consumers can share it (adding partitions "
                   "moves keys, so plan it); replication factor 1, below 3")]),
    ],
)  # fmt: skip
def test_the_plan_creates_what_is_missing_and_warns_about_the_rest(
    existing: dict[str, TopicShape],
    replication: int,
    chosen: dict[str, int],
    expected: list[TopicRow],
) -> None:
    assert plan_topics(TWO, existing, replication=replication, partitions=chosen) == expected


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        (["inventory.v1"], "expected NAME=N"),
        (["nope.v1=3"], "expected NAME=N with NAME one of"),
        (["inventory.v1=0"], "must be 1 to 10000"),
        (["inventory.v1=x"], "must be 1 to 10000"),
    ],
)
def test_partition_choices_are_checked(given: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_partitions(given, ALL_TOPICS)
    assert parse_partitions(["price.v1=12"], ALL_TOPICS) == {"price.v1": 12}


def test_a_replication_factor_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan_topics((Topic("t", 1),), {}, replication=0)


async def test_create_then_check_on_apache_kafka(apache_kafka: ApacheKafka) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": apache_kafka.bootstrap}
    try:
        await delete_topics(apache_kafka.bootstrap, ALL_TOPICS, timeout=60.0)
        before = await run_shelfedge("topics", "check", env=env)
        assert before.returncode == 1
        assert before.stdout.count("missing") == len(ALL_TOPICS)

        too_many = await run_shelfedge("topics", "create", "--replication-factor", "3", env=env)
        assert too_many.returncode == 1
        assert "the cluster refused" in too_many.stderr
        assert "inventory.v1" in too_many.stderr

        dry = await run_shelfedge(
            "topics", "create", "--replication-factor", "1", "--dry-run", env=env
        )
        assert dry.stdout.count("to create") == len(ALL_TOPICS)
        made = (
            await run_shelfedge(
                "topics", "create", "--replication-factor", "1",
                "--partitions", "inventory.v1=12", env=env,
            )
        ).check()  # fmt: skip
        assert made.stdout.count("created") == len(ALL_TOPICS)
        checked = (await run_shelfedge("topics", "check", env=env)).check()
        assert checked.stdout.count("ok ") == len(ALL_TOPICS)
        assert "inventory.v1               partitions 12" in checked.stdout
        again = (
            await run_shelfedge("topics", "create", "--replication-factor", "2", env=env)
        ).check()
        assert "created" not in again.stdout  # nothing is altered, only warned about
        assert again.stdout.count("replication factor 1, below 2") == len(ALL_TOPICS)
    finally:
        await empty_topics(apache_kafka.bootstrap, ALL_TOPICS, timeout=60.0)
