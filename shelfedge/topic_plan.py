"""What ``shelfedge topics`` would do on a cluster: the pure decision.

Given the topics shelfedge uses (`fragments.topics`), what the cluster has, the replication
factor asked for and any partition counts chosen per topic, each topic is to be created, is
fine, or exists in a shape worth a warning: fewer partitions than asked (fewer consumers can
share it; adding partitions later moves keys to other partitions, so per-key order is lost
across the change) or a lower replication factor than asked (a broker loss can lose records).
Existing topics are never altered. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from fragments.topics import Topic

Verdict = Literal["create", "ok", "warn"]


@dataclass(frozen=True, slots=True)
class TopicShape:
    """A topic as the cluster has it."""

    partitions: int
    replication: int


@dataclass(frozen=True, slots=True)
class TopicRow:
    name: str
    verdict: Verdict
    partitions: int
    """To create with (create), or as the cluster has it."""
    replication: int
    note: str = ""


def parse_partitions(given: Sequence[str], topics: Sequence[Topic]) -> dict[str, int]:
    """``NAME=N`` choices (``--partitions inventory.v1=24``) checked against the known
    topics; ValueError naming the bad one."""
    known = {t.name for t in topics}
    out: dict[str, int] = {}
    for choice in given:
        name, sep, count = choice.partition("=")
        if not sep or name not in known:
            names = ", ".join(sorted(known))
            raise ValueError(f"{choice!r}: expected NAME=N with NAME one of {names}")
        if not count.isdigit() or not 1 <= int(count) <= 10_000:
            raise ValueError(f"{choice!r}: the partition count must be 1 to 10000")
        out[name] = int(count)
    return out


def plan_topics(
    topics: Sequence[Topic],
    existing: Mapping[str, TopicShape],
    *,
    replication: int,
    partitions: Mapping[str, int] | None = None,
) -> list[TopicRow]:
    """One row per topic of `topics`, in their order."""
    if replication < 1:
        raise ValueError(f"the replication factor must be at least 1, got {replication}")
    chosen = partitions or {}
    rows: list[TopicRow] = []
    for topic in topics:
        wanted = chosen.get(topic.name, topic.partitions)
        shape = existing.get(topic.name)
        if shape is None:
            rows.append(TopicRow(topic.name, "create", wanted, replication))
            continue
        notes = []
        if shape.partitions < wanted:
            notes.append(
                f"{shape.partitions} partitions, fewer than {wanted}: fewer consumers can share "
                "it (adding partitions moves keys, so plan it)"
            )
        if shape.replication < replication:
            notes.append(f"replication factor {shape.replication}, below {replication}")
        verdict: Verdict = "warn" if notes else "ok"
        rows.append(
            TopicRow(topic.name, verdict, shape.partitions, shape.replication, "; ".join(notes))
        )
    return rows
