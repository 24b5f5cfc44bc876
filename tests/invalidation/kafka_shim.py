"""Let Debian's kcat talk to the Tansu test broker: an ApiVersions shim on a loopback port.

librdkafka 2.0.2 (the one Debian bookworm's kcat links) cannot parse Tansu 0.6.0's answer to
an ApiVersions v3 request ("Protocol read buffer underflow for ApiVersion v3" in its trailing
tagged fields) and drops the connection. Kafka clients negotiate that request's version
(KIP-511): a broker that answers UNSUPPORTED_VERSION makes the client retry with v0. The shim
sits in front of the broker, answers ApiVersions >= v3 that way itself and forwards every other
byte unchanged in both directions, so kcat then speaks to the real broker; the broker advertises
the shim's address so that every connection a client opens goes through it.

Test support only: it never listens beyond loopback and never alters a forwarded request.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from pathlib import Path
from types import TracebackType
from typing import Self

from shelfedge.localstack import LOOPBACK, KafkaBroker

API_VERSIONS = 18
UNSUPPORTED_VERSION = 35
FIRST_FLEXIBLE_API_VERSIONS = 3


class AdvertisedKafkaBroker(KafkaBroker):
    """A Tansu broker that tells clients to connect to `advertised_port` (the shim)."""

    def __init__(self, advertised_port: int, *, workdir: Path | None = None) -> None:
        super().__init__(workdir=workdir)
        self.advertised_port = advertised_port

    def _argv(self, port: int) -> list[str]:
        argv = super()._argv(port)
        at = argv.index("--advertised-listener-url") + 1
        argv[at] = f"tcp://{self.host}:{self.advertised_port}"
        return argv


class ApiVersionsShim:
    """Forwards a loopback port (kernel-chosen at start) to the broker on `broker_port`.

    Start the shim first, then the broker advertising `shim.port`, then set `broker_port`.
    """

    def __init__(self) -> None:
        self.port = 0
        self.broker_port: int | None = None
        self.downgraded = 0
        """How many ApiVersions requests were answered UNSUPPORTED_VERSION."""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._connection, LOOPBACK, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self.broker_port is None:
                raise ConnectionRefusedError("the shim has no broker port yet")
            broker_r, broker_w = await asyncio.open_connection(LOOPBACK, self.broker_port)
        except OSError:
            client_w.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(
                self._requests(client_r, client_w, broker_w),
                _pipe(broker_r, client_w),
                return_exceptions=True,
            )
        finally:
            for writer in (client_w, broker_w):
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            self._tasks.discard(task)

    async def _requests(
        self,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        broker_w: asyncio.StreamWriter,
    ) -> None:
        try:
            while True:
                size_bytes = await client_r.readexactly(4)
                (size,) = struct.unpack(">i", size_bytes)
                request = await client_r.readexactly(size)
                api_key, api_version, correlation_id = struct.unpack(">hhi", request[:8])
                if api_key == API_VERSIONS and api_version >= FIRST_FLEXIBLE_API_VERSIONS:
                    # v0-shaped answer: correlation id, error code, empty api array.
                    reply = struct.pack(">ihi", correlation_id, UNSUPPORTED_VERSION, 0)
                    client_w.write(struct.pack(">i", len(reply)) + reply)
                    await client_w.drain()
                    self.downgraded += 1
                    continue
                broker_w.write(size_bytes + request)
                await broker_w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            broker_w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        return
    finally:
        writer.close()
