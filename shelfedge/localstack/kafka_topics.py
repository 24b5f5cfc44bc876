"""Create shelfedge's Kafka topics on a broker, idempotently, and wait until metadata shows them.

Topic names and partition counts come only from `fragments.topics`. Topics that already exist
are accepted as they are (their partition count is the cluster's business); topics created
here must show every partition with a leader before `ensure_topics` returns. While the broker
warms up, retriable failures (refused connections, timeouts, retriable broker errors) are
retried until the deadline; a broker that refuses a topic outright fails at once.

It must never delete or alter a topic, and never name a topic in a Metadata request: Tansu
(like any broker with auto.create.topics.enable) creates the topics it is asked about.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, for_code

from fragments.topics import Topic
from shelfedge.localstack.errors import TopicSetupError

_TOPIC_ALREADY_EXISTS = 36
_LONGEST_REQUEST_S = 5.0
_LONGEST_BACKOFF_S = 0.5


def unique_topics(topics: Iterable[Topic]) -> tuple[Topic, ...]:
    """The topics without repeats; ValueError if one name comes with two partition counts."""
    by_name: dict[str, Topic] = {}
    for topic in topics:
        seen = by_name.setdefault(topic.name, topic)
        if seen.partitions != topic.partitions:
            raise ValueError(
                f"topic {topic.name!r} requested with {seen.partitions} and "
                f"{topic.partitions} partitions"
            )
    return tuple(by_name.values())


def missing_topics(wanted: Sequence[Topic], existing: Collection[str]) -> list[Topic]:
    """The wanted topics the broker does not list yet."""
    return [topic for topic in wanted if topic.name not in existing]


def unready_topics(
    wanted: Sequence[Topic], created: Collection[str], led_partitions: Mapping[str, int]
) -> list[str]:
    """Why each wanted topic is not usable yet (empty when all are).

    `led_partitions` maps each topic in the metadata to its partitions that have a leader.
    Topics created by this call must show all their partitions; others at least one.
    """
    problems: list[str] = []
    for topic in wanted:
        led = led_partitions.get(topic.name)
        if led is None:
            problems.append(f"{topic.name} is not in the metadata")
        elif topic.name in created and led != topic.partitions:
            problems.append(f"{topic.name} shows {led} of {topic.partitions} partitions")
        elif led == 0:
            problems.append(f"{topic.name} has no partition with a leader")
    return problems


def led_partitions_of(metadata_topics: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Count, per topic of a Metadata response, the partitions with a leader and no error."""
    counts: dict[str, int] = {}
    for entry in metadata_topics:
        partitions = entry["partitions"] if entry["error_code"] == 0 else []
        counts[str(entry["topic"])] = sum(
            1 for p in partitions if p["error_code"] == 0 and p["leader"] >= 0
        )
    return counts


# The deadline is part of the retry policy (and of the error message that reports what was
# still wrong), so it is a parameter rather than left to a caller's asyncio.timeout().
async def ensure_topics(
    bootstrap: str,
    topics: Iterable[Topic],
    *,
    timeout: float = 30.0,  # noqa: ASYNC109
) -> None:
    """Create the missing `topics` on the broker at `bootstrap` and wait until all are usable.

    Raises TopicSetupError when the broker refuses a topic or the topics are not usable
    within `timeout` seconds (the message says what was still wrong).
    """
    if timeout <= 0:
        raise ValueError(f"ensure_topics: timeout must be > 0 s, got {timeout}")
    wanted = unique_topics(topics)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    created: set[str] = set()
    problems = ["no attempt made"]
    backoff = 0.02
    while (remaining := deadline - loop.time()) > 0:
        try:
            async with asyncio.timeout(remaining):
                problems = await _attempt(bootstrap, wanted, created, remaining)
        except TimeoutError:
            problems = ["the broker did not answer before the deadline", *problems]
        except (KafkaConnectionError, KafkaTimeoutError, OSError) as exc:
            problems = [f"{type(exc).__name__}: {exc}"]
        except KafkaError as exc:
            if not exc.retriable:
                raise TopicSetupError(f"broker at {bootstrap} failed: {exc!r}") from exc
            problems = [f"{type(exc).__name__}: {exc}"]
        if not problems:
            return
        await asyncio.sleep(min(backoff, max(deadline - loop.time(), 0.0)))
        backoff = min(backoff * 2, _LONGEST_BACKOFF_S)
    names = ", ".join(topic.name for topic in wanted)
    raise TopicSetupError(
        f"topics [{names}] not ready on {bootstrap} after {timeout:g} s: " + "; ".join(problems)
    )


async def _attempt(
    bootstrap: str, wanted: Sequence[Topic], created: set[str], remaining: float
) -> list[str]:
    """One admin session: create what is missing, then report what is not usable yet."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="shelfedge-localstack",
        request_timeout_ms=int(min(remaining, _LONGEST_REQUEST_S) * 1000),
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        to_create = missing_topics(wanted, existing)
        if to_create:
            response = await admin.create_topics(
                [NewTopic(topic.name, topic.partitions, 1) for topic in to_create]
            )
            retry_reasons = _record_created(bootstrap, to_create, response.topic_errors, created)
            if retry_reasons:
                return retry_reasons
        # Metadata for *all* topics: naming them would make the broker auto-create them.
        return unready_topics(wanted, created, led_partitions_of(await admin.describe_topics()))
    finally:
        await admin.close()


def _record_created(
    bootstrap: str,
    requested: Sequence[Topic],
    topic_errors: Iterable[Sequence[Any]],
    created: set[str],
) -> list[str]:
    """Note which topics this call created; raise on a refusal, return retriable failures."""
    partitions = {topic.name: topic.partitions for topic in requested}
    retry_reasons: list[str] = []
    for entry in topic_errors:
        name, code = str(entry[0]), int(entry[1])
        message = entry[2] if len(entry) > 2 else None
        if code == 0:
            created.add(name)
        elif code != _TOPIC_ALREADY_EXISTS:  # Created meanwhile by someone else: fine.
            error = for_code(code)
            reason = f"creating {name}: {error.__name__} ({message or 'no message'})"
            if not error.retriable:
                raise TopicSetupError(
                    f"broker at {bootstrap} refused topic {name!r} "
                    f"with {partitions.get(name, '?')} partitions: {reason}"
                )
            retry_reasons.append(reason)
    return retry_reasons
