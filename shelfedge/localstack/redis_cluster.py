"""A throwaway Redis Cluster on loopback: six `redis-server` nodes, three masters, three replicas.

Each node is a `RedisServer` started with `--cluster-enabled yes`, in its own work dir with its
own cluster config file (`nodes-PORT.conf`; a node refuses to start when it cannot lock it) and
its own cluster bus port. `redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`
then assigns the 16,384 slots; `start()` returns once every node reports `cluster_state:ok` and
every master has a replica that has synced with it (a replica that never synced cannot take
over). The node timeout is short (1 s by default) so a killed master fails over to its replica
within a few seconds: `kill_master()` and `wait_for_failover()` are the fault helpers, and
`restart()` brings a killed node back (it rejoins as a replica).

It must never touch a Redis it did not start, listen on anything but loopback, or hand out a
cluster that is not `ok`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from redis import Redis
from redis.exceptions import RedisError

from shelfedge.localstack.errors import ServiceBinaryNotFound, ServiceStartError, ServiceStateError
from shelfedge.localstack.ports import free_port
from shelfedge.localstack.redis_server import RedisServer

REDIS_CLI_NOT_FOUND = (
    "redis-cli not found on PATH: install it with 'apt-get install -y redis-tools' (Debian/Ubuntu)"
)
MASTERS = 3
NODES = MASTERS * 2
_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One line of `CLUSTER NODES`, as far as the fault helpers need it."""

    node_id: str
    port: int
    role: str
    """`master` or `slave` (Redis's word)."""
    master_id: str | None
    connected: bool
    failed: bool
    has_slots: bool


@dataclass(frozen=True, slots=True)
class KilledMaster:
    """A master `kill_master` SIGKILLed, and the ids of the replicas that may replace it."""

    node: ClusterNode
    replica_ids: frozenset[str]


def parse_cluster_nodes(text: str) -> list[ClusterNode]:
    """The nodes of a `CLUSTER NODES` reply (`id ip:port@cport flags master ping pong epoch
    link slot...`), skipping nodes whose address is unknown."""
    nodes: list[ClusterNode] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address, flags = fields[1], set(fields[2].split(","))
        host_port = address.split("@", 1)[0]
        port_text = host_port.rsplit(":", 1)[-1]
        if not port_text.isdigit() or int(port_text) == 0:
            continue
        nodes.append(
            ClusterNode(
                node_id=fields[0],
                port=int(port_text),
                role="master" if "master" in flags else "slave",
                master_id=None if fields[3] == "-" else fields[3],
                connected=fields[7] == "connected",
                failed=bool(flags & {"fail", "fail?"}),
                has_slots=len(fields) > 8,
            )
        )
    return nodes


def cluster_problems(nodes: Sequence[ClusterNode], expected_ports: Sequence[int]) -> list[str]:
    """Why a cluster view is not yet 3 masters with slots, each with one online replica."""
    problems: list[str] = []
    by_port = {node.port: node for node in nodes}
    missing = sorted(set(expected_ports) - set(by_port))
    if missing:
        problems.append(f"nodes {missing} not in the view")
    live = [node for node in nodes if node.port in expected_ports and not node.failed]
    masters = [node for node in live if node.role == "master" and node.has_slots]
    if len(masters) != MASTERS:
        problems.append(f"{len(masters)} masters with slots, not {MASTERS}")
    for master in masters:
        replicas = [n for n in live if n.master_id == master.node_id and n.connected]
        if not replicas:
            problems.append(f"master on port {master.port} has no connected replica")
    return problems


class RedisCluster:
    """Six real `redis-server` cluster nodes on loopback, formed into one cluster."""

    def __init__(self, *, node_timeout_ms: int = 5000, startup_timeout: float = 30.0) -> None:
        """Find `redis-server` and `redis-cli` now (failing loudly); start nothing yet.

        `node_timeout_ms` is `cluster-node-timeout`: how long a node may go unheard before its
        replica takes over. Redis's default is 15 s; 5 s keeps failover tests short while a
        node starved of CPU for a moment on a shared two-core machine (a browser, a JVM and the
        suite beside it) is not failed over by mistake, as 1 s risked (two suite runs timed
        out reading from the fresh cluster in their first cluster tests)."""
        cli = shutil.which("redis-cli")
        if cli is None:
            raise ServiceBinaryNotFound(REDIS_CLI_NOT_FOUND)
        if node_timeout_ms < 100:
            raise ValueError(f"node_timeout_ms must be >= 100, got {node_timeout_ms}")
        self._cli = cli
        self._node_timeout_ms = node_timeout_ms
        self._startup_timeout = startup_timeout
        self._nodes: list[RedisServer] = []
        self._closed = False

    # -- state -----------------------------------------------------------------------------

    @property
    def nodes(self) -> tuple[RedisServer, ...]:
        """The six node servers, in the order `redis-cli --cluster create` was given them."""
        return tuple(self._nodes)

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(node.port for node in self._nodes)

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """`(host, port)` of every node, the form cluster clients take as seeds."""
        return [(node.host, node.port) for node in self._nodes]

    @property
    def url(self) -> str:
        """`redis+cluster://host:port,...` with every node as a seed (shelfedge's cluster URL,
        see origin.core.redis_url)."""
        return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in self.startup_nodes)

    def view(self) -> list[ClusterNode]:
        """`CLUSTER NODES` as seen by the first running node."""
        for node in self._nodes:
            if node.running:
                with _client(node.port) as client:
                    return parse_cluster_nodes(str(client.execute_command("CLUSTER", "NODES")))
        raise ServiceStateError("no node of the cluster is running")

    def masters(self) -> list[ClusterNode]:
        """The masters that serve slots and are not failed, in port order."""
        view = [n for n in self.view() if not n.failed]
        return sorted((n for n in view if n.role == "master" and n.has_slots), key=_port)

    def server_on(self, port: int) -> RedisServer:
        for node in self._nodes:
            if node.port == port:
                return node
        raise KeyError(f"no node of this cluster on port {port}")

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Start six nodes, create the cluster, and wait until it is ok with replicas online."""
        if self._closed or self._nodes:
            raise ServiceStateError(f"{self!r} was already started: create a new one")
        try:
            taken: set[int] = set()
            for _ in range(NODES):
                # The cluster bus gets a port of its own: by default it is the client port
                # + 10,000, which a kernel-chosen port may push past 65,535.
                port, bus_port = _new_port(taken), _new_port(taken)
                node = RedisServer(
                    port=port,
                    extra_args=[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        str(bus_port),
                        "--cluster-config-file",
                        f"nodes-{port}.conf",
                        "--cluster-node-timeout",
                        str(self._node_timeout_ms),
                        # A master waits 5 s by default for more replicas before a full sync.
                        "--repl-diskless-sync-delay",
                        "0",
                    ],
                )
                self._nodes.append(node)
                node.start()
            self._create()
            self.wait_until_healthy(self._startup_timeout)
        except BaseException:
            self.close()
            raise
        return self

    def _create(self) -> None:
        addresses = [f"{node.host}:{node.port}" for node in self._nodes]
        argv = [self._cli, "--cluster", "create", *addresses]
        argv += ["--cluster-replicas", "1", "--cluster-yes"]
        done = subprocess.run(
            argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=60, check=False
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")[-3000:]
            raise ServiceStartError(
                f"redis-cli --cluster create exited {done.returncode}:\n{output}"
            )

    def wait_until_healthy(self, timeout: float) -> float:
        """Wait until every running node says `cluster_state:ok` and each master has an online
        replica; return the seconds it took, or raise ServiceStartError saying what was wrong."""
        started = time.monotonic()
        problems = ["not checked yet"]
        while time.monotonic() - started < timeout:
            problems = self._health_problems()
            if not problems:
                return time.monotonic() - started
            time.sleep(_POLL_S)
        raise ServiceStartError(
            f"redis cluster on ports {list(self.ports)} not healthy after {timeout:g} s: "
            + "; ".join(problems)
        )

    def _health_problems(self) -> list[str]:
        problems: list[str] = []
        running = [node for node in self._nodes if node.running]
        try:
            problems += [
                f"node {node.port} is not cluster_state:ok"
                for node in running
                if not _cluster_ok(node.port)
            ]
            view = self.view()
            problems += [
                f"replica {n.port} has not synced with its master"
                for n in view
                if n.role == "slave" and not n.failed and not _replication_up(n.port)
            ]
        except RedisError as exc:
            return [f"{type(exc).__name__}: {exc}"]
        problems += cluster_problems(view, [node.port for node in running])
        return problems

    def kill_master(self, index: int = 0) -> KilledMaster:
        """SIGKILL the `index`-th master (in port order); return it and its replicas' ids."""
        view = self.view()
        victim = sorted(
            (n for n in view if n.role == "master" and n.has_slots and not n.failed), key=_port
        )[index]
        replicas = frozenset(n.node_id for n in view if n.master_id == victim.node_id)
        self.server_on(victim.port).kill()
        return KilledMaster(victim, replicas)

    def wait_for_failover(self, killed: KilledMaster, timeout: float = 30.0) -> ClusterNode:
        """Wait until a former replica of `killed` serves slots as a master and every running
        node says `cluster_state:ok`; return the promoted node."""
        started = time.monotonic()
        last = "not checked yet"
        while time.monotonic() - started < timeout:
            try:
                promoted = [n for n in self.masters() if n.node_id in killed.replica_ids]
                not_ok = [n.port for n in self._nodes if n.running and not _cluster_ok(n.port)]
            except RedisError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if promoted and not not_ok:
                    return promoted[0]
                last = f"replica promoted: {bool(promoted)}; nodes not ok: {not_ok}"
            time.sleep(_POLL_S)
        raise ServiceStateError(
            f"no failover of master {killed.node.port} within {timeout:g} s (last: {last})"
        )

    def restart(self, port: int) -> None:
        """Start a killed node again on its port and data dir (it rejoins the cluster)."""
        self.server_on(port).start()

    def close(self) -> None:
        """Stop every node and delete their work dirs; idempotent."""
        for node in self._nodes:
            node.close()
        self._closed = True

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RedisCluster ports={list(self.ports) if self._nodes else '?'}>"


def _client(port: int) -> Redis:
    return Redis(host="127.0.0.1", port=port, socket_timeout=2.0, decode_responses=True)


def _new_port(taken: set[int]) -> int:
    while (port := free_port()) in taken:
        pass
    taken.add(port)
    return port


def _replication_up(port: int) -> bool:
    """A replica that has synced with its master (only such a replica can take over)."""
    with _client(port) as client:
        status: object = client.info("replication").get("master_link_status")
        return status == "up"


def _cluster_ok(port: int) -> bool:
    with _client(port) as client:
        return "cluster_state:ok" in str(client.execute_command("CLUSTER", "INFO"))


def _port(node: ClusterNode) -> int:
    return node.port
