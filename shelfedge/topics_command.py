"""``shelfedge topics check | create``: shelfedge's Kafka topics on a production cluster.

``check`` prints each topic shelfedge uses (`fragments.topics`) as the cluster has it and exits 1
when one is missing; ``create --replication-factor N [--partitions NAME=N ...] [--dry-run]``
creates the missing ones (with the partition counts of `fragments.topics` unless chosen) and
never alters an existing topic: it warns when one has fewer partitions or a lower replication
factor than asked (`shelfedge.topic_plan`). It connects with the Kafka settings every process
uses, TLS and SASL included. The dev stack creates its topics itself (`shelfedge dev`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from fragments.topics import ALL_TOPICS
from origin.errors import OriginError, SettingsError
from origin.settings import Settings
from shelfedge.topic_plan import TopicRow, TopicShape, parse_partitions, plan_topics

REQUEST_TIMEOUT_MS = 30_000


class TopicSetupRefused(OriginError):
    """The cluster refused to create a topic (the message names it and the broker's reason)."""


def add_topics_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    topics = sub.add_parser("topics", help="check or create shelfedge's Kafka topics")
    topics_sub = topics.add_subparsers(dest="topics_command", required=True)
    topics_sub.add_parser("check", help="show each topic as the cluster has it")
    create = topics_sub.add_parser("create", help="create the missing topics")
    create.add_argument(
        "--replication-factor", type=int, required=True,
        help="replicas of each partition (3 on a production cluster)",
    )  # fmt: skip
    create.add_argument(
        "--partitions", action="append", default=[], metavar="NAME=N",
        help="partitions of one topic (repeatable; default: shelfedge's, e.g. inventory.v1=6)",
    )  # fmt: skip
    create.add_argument("--dry-run", action="store_true", help="show what would be created")


async def run_topics(settings: Settings, args: argparse.Namespace) -> int:
    if settings.kafka_bootstrap is None:
        raise SettingsError("KAFKA_BOOTSTRAP_SERVERS", "host:port,... of the cluster", None)
    create = args.topics_command == "create"
    replication = args.replication_factor if create else 1
    if replication < 1:
        raise SettingsError("--replication-factor", "1 or more", str(replication))
    try:
        partitions = parse_partitions(args.partitions if create else [], ALL_TOPICS)
    except ValueError as exc:
        raise SettingsError("--partitions", "NAME=N", str(exc)) from None
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="shelfedge-topics",
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        **settings.kafka_security.client_kwargs(),
    )
    try:
        await admin.start()
        rows = plan_topics(
            ALL_TOPICS, await _shapes(admin), replication=replication, partitions=partitions
        )
        missing = [row for row in rows if row.verdict == "create"]
        if create and missing and not args.dry_run:
            await _create(admin, missing)
    except KafkaError as exc:
        raise TopicSetupRefused(f"Kafka at {settings.kafka_bootstrap}: {exc!r}") from exc
    finally:
        await admin.close()
    mode = "check" if not create else "dry-run" if args.dry_run else "create"
    for row in rows:
        print(_line(row, mode))
    return 1 if missing and not create else 0


async def _shapes(admin: AIOKafkaAdminClient) -> dict[str, TopicShape]:
    names = {t.name for t in ALL_TOPICS}
    present = sorted(names & set(await admin.list_topics()))
    described: list[dict[str, Any]] = await admin.describe_topics(present) if present else []
    return {
        str(entry["topic"]): TopicShape(
            len(entry["partitions"]),
            min((len(p["replicas"]) for p in entry["partitions"]), default=0),
        )
        for entry in described
        if entry["error_code"] == 0
    }


async def _create(admin: AIOKafkaAdminClient, rows: Sequence[TopicRow]) -> None:
    response = await admin.create_topics(
        [NewTopic(row.name, row.partitions, row.replication) for row in rows],
        timeout_ms=REQUEST_TIMEOUT_MS,
    )
    refused = [
        f"{name}: error {code} {message or ''}".strip()
        for name, code, *rest in response.topic_errors
        for message in [rest[0] if rest else None]
        if code != 0
    ]
    if refused:
        raise TopicSetupRefused("the cluster refused: " + "; ".join(refused))


_MISSING = {"check": "missing", "dry-run": "to create", "create": "created"}


def _line(row: TopicRow, mode: str) -> str:
    verdict = _MISSING[mode] if row.verdict == "create" else row.verdict
    text = (
        f"{verdict:<9} {row.name:<26} partitions {row.partitions:<4} replication {row.replication}"
    )
    return f"{text}  {row.note}" if row.note else text
