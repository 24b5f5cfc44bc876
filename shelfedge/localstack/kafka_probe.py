"""Is a Kafka-protocol server ready on a port? One ApiVersions v0 exchange says.

Shared by the Tansu and Apache Kafka launchers. Every Kafka broker answers ApiVersions v0
(clients send it before anything else), and Apache Kafka only accepts requests on its client
listener once the broker has registered with its controller and been unfenced, so an answer
without error means clients can work.

It must never send anything but that one request, nor connect anywhere but the given address.
"""

from __future__ import annotations

import socket
import struct

from shelfedge.localstack.service import ProbeFailed

_API_VERSIONS = 18
_PROBE_CORRELATION_ID = 0x5E1F
_PROBE_CLIENT_ID = b"shelfedge-localstack"
_LARGEST_PROBE_REPLY = 1 << 20


def probe_api_versions(host: str, port: int, timeout: float) -> None:
    """Return if `host:port` answers ApiVersions v0 without error; raise ProbeFailed or OSError."""
    # ApiVersions v0: header (api key, version, correlation id, client id), empty body.
    header = struct.pack(">hhih", _API_VERSIONS, 0, _PROBE_CORRELATION_ID, len(_PROBE_CLIENT_ID))
    request = header + _PROBE_CLIENT_ID
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _receive_exactly(sock, 4))
        if not 6 <= size <= _LARGEST_PROBE_REPLY:
            raise ProbeFailed(f"ApiVersions reply of implausible size {size}")
        reply = _receive_exactly(sock, size)
    correlation_id, error_code = struct.unpack_from(">ih", reply)
    if correlation_id != _PROBE_CORRELATION_ID:
        raise ProbeFailed(f"ApiVersions reply has correlation id {correlation_id}")
    if error_code != 0:
        raise ProbeFailed(f"ApiVersions answered error code {error_code}")


def _receive_exactly(sock: socket.socket, count: int) -> bytes:
    chunks: list[bytes] = []
    missing = count
    while missing:
        chunk = sock.recv(missing)
        if not chunk:
            raise ProbeFailed(f"connection closed with {missing} of {count} bytes unread")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)
