"""Command packing in C for redis-py's asyncio client.

redis-py's synchronous client packs commands with `hiredis.pack_command` when hiredis is
installed; its asyncio client always packs in Python, encoding every argument one call at a time.
The invalidation pipeline sends tens of thousands of arguments per coalescing window (one Lua
call per SKU, several arguments per event), and that packing was the largest single cost in its
profile. `with_hiredis_packing` gives a connection class the synchronous client's packer; the
bytes on the wire are the same RESP either way.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import DataError


class HiredisPacking:
    """Mixin for an asyncio connection class: `pack_command` in C (same semantics as redis-py's
    synchronous `HiredisRespSerializer`: a str command name with spaces is split into words)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            pass  # a bytearray or memoryview argument (rare): hiredis takes bytes only
        try:
            return [hiredis.pack_command(tuple(_plain(a) for a in args))]
        except TypeError as exc:
            raise DataError(str(exc)) from exc

    def pack_commands(self, commands: Any) -> list[bytes]:
        return [b"".join(chunk for cmd in commands for chunk in self.pack_command(*cmd))]


def _plain(arg: Any) -> Any:
    return bytes(arg) if isinstance(arg, bytearray | memoryview) else arg


_PACKING_CLASSES: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def with_hiredis_packing(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """`connection_class` with hiredis packing (one subclass per class, made once)."""
    if issubclass(connection_class, HiredisPacking):
        return connection_class
    if connection_class not in _PACKING_CLASSES:
        name = f"HiredisPacking{connection_class.__name__}"
        _PACKING_CLASSES[connection_class] = type(name, (HiredisPacking, connection_class), {})
    return _PACKING_CLASSES[connection_class]
