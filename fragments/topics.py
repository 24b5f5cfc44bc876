"""Kafka topic names and their default partition counts: the one definition.

Every producer, consumer, fixture and CLI names topics through this module.
It must stay stdlib-only (it is imported under Pyodide with the rest of `fragments`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topic:
    """A Kafka topic shelfedge uses."""

    name: str
    """The topic name, versioned: a breaking schema change gets a new name."""
    partitions: int
    """Partitions created by the dev stack; production clusters choose their own."""


INVENTORY = Topic("inventory.v1", 6)
PRICE = Topic("price.v1", 6)
CATALOG = Topic("catalog.v1", 6)
"""Product content: upserts of title, links, category, brand, labels, description; deletions."""
LISTS = Topic("lists.v1", 3)
"""Imported recommendation lists (whole-list replacements), keyed by list id."""
DEAD_LETTER = Topic("shelfedge.deadletter.v1", 1)
EXPOSURES = Topic("exposures.v1", 3)
CONVERSIONS = Topic("conversions.v1", 3)
CLICKSTREAM = Topic("clickstream.v1", 6)
"""Shoppers' views, cart changes, purchases and searches (`fragments.clickstream`), keyed by
visitor id (one visitor's events stay in order on one partition)."""

ALL_TOPICS: tuple[Topic, ...] = (
    INVENTORY,
    PRICE,
    CATALOG,
    LISTS,
    DEAD_LETTER,
    EXPOSURES,
    CONVERSIONS,
    CLICKSTREAM,
)
