"""A real `varnishd` on a loopback port in front of a test origin, with shelfedge's VCL.

`Varnish` renders `deploy/varnish/shelfedge.vcl` (or another VCL with the same placeholders)
for a backend address, then runs

    varnishd -F -j none -n <workdir>/n -a 127.0.0.1:<port> -f <workdir>/shelfedge.vcl \
        -s malloc,64m -p vcc_allow_inline_c=off ...

in its own process group (the manager forks a cache child: both are ended together) with its
output in `<workdir>/varnishd.log`. `start()` returns once the cache child answers HTTP on the
port; a failed start raises `ServiceStartError` carrying the log tail (VCL compile errors land
there). `counters()` reads `varnishstat` so a test can check what Varnish itself counted.

`-j none` runs every varnishd process as the calling user: the default `unix` jail would
switch to the `varnish` user, which cannot read a test's private temp dir.

This module must never import pytest, listen on anything but loopback, or leave a varnishd
process behind once `stop()`/`close()` returned.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from shelfedge.localstack.errors import LocalStackError, ServiceBinaryNotFound
from shelfedge.localstack.service import LocalService, ProbeFailed

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: this file lives in `tests/support/`."""

SHELFEDGE_VCL = REPO_ROOT / "deploy" / "varnish" / "shelfedge.vcl"
DEBIAN_VARNISHD = "/usr/sbin/varnishd"
VARNISHD_NOT_FOUND = "varnishd not found: apt-get install -y varnish varnish-modules"
HOST_PLACEHOLDER = "${SHELFEDGE_ORIGIN_HOST}"
PORT_PLACEHOLDER = "${SHELFEDGE_ORIGIN_PORT}"
_ANY_PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")

DEFAULT_PARAMS: Mapping[str, str] = {
    "vcc_allow_inline_c": "off",
    # What deploy/varnish/README.md tells users to set: tag headers may reach 16 KB.
    "http_resp_hdr_len": "32k",
    "http_resp_size": "96k",
    "workspace_backend": "160k",
    # A test cache needs few threads; the defaults start 2 x 100.
    "thread_pools": "1",
    "thread_pool_min": "10",
}


class VarnishCommandError(LocalStackError):
    """varnishadm or varnishstat failed; the message carries their output."""


def render_vcl(template: str, backend_host: str, backend_port: int) -> str:
    """Fill the backend placeholders; raise ValueError if one is missing or another remains."""
    for placeholder in (HOST_PLACEHOLDER, PORT_PLACEHOLDER):
        if placeholder not in template:
            raise ValueError(f"VCL template has no {placeholder} placeholder")
    rendered = template.replace(HOST_PLACEHOLDER, backend_host).replace(
        PORT_PLACEHOLDER, str(backend_port)
    )
    leftover = _ANY_PLACEHOLDER.search(rendered)
    if leftover:
        raise ValueError(f"VCL template has an unknown placeholder {leftover.group(0)}")
    return rendered


class Varnish(LocalService):
    """varnishd with a rendered VCL, in its own process group and temp dir."""

    display_name = "varnishd"

    def __init__(
        self,
        *,
        backend_host: str,
        backend_port: int,
        vcl: Path = SHELFEDGE_VCL,
        port: int | None = None,
        workdir: Path | None = None,
        storage: str = "malloc,64m",
        params: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
        stop_grace: float = 5.0,
    ) -> None:
        """Check the binary and render the VCL now (failing loudly); start later.

        `params` are `-p name=value` pairs added to (and overriding) `DEFAULT_PARAMS`.
        """
        # Debian installs varnishd in /usr/sbin, which is not on every user's PATH.
        found = shutil.which("varnishd") or shutil.which(DEBIAN_VARNISHD)
        if found is None:
            raise ServiceBinaryNotFound(VARNISHD_NOT_FOUND)
        template = vcl.read_text(encoding="utf-8")
        self.vcl_source = vcl
        self.vcl_text = render_vcl(template, backend_host, backend_port)
        self._storage = storage
        self._params = {**DEFAULT_PARAMS, **(params or {})}
        self._extra_args = tuple(extra_args)
        super().__init__(
            binary=found,
            port=port,
            workdir=workdir,
            startup_timeout=startup_timeout,
            stop_grace=stop_grace,
        )

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://{self.host}:{self.port}"

    @property
    def instance_dir(self) -> Path:
        """varnishd's `-n` directory (shared memory log, management secret)."""
        return self.workdir / "n"

    @property
    def vcl_path(self) -> Path:
        return self.workdir / "shelfedge.vcl"

    def counters(self, *names: str) -> dict[str, int]:
        """Current values of varnishstat counters, e.g. ``MAIN.s_bgfetch`` (all when none given)."""
        varnishstat = shutil.which("varnishstat")
        if varnishstat is None:
            raise ServiceBinaryNotFound(VARNISHD_NOT_FOUND)
        argv = [varnishstat, "-n", str(self.instance_dir), "-1", "-j"]
        for name in names:
            argv += ["-f", name]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        if done.returncode != 0:
            raise VarnishCommandError(
                f"varnishstat failed ({done.returncode}): {done.stderr.strip()}"
            )
        doc = json.loads(done.stdout)
        found = doc.get("counters", doc)  # 7.x nests them under "counters"
        values = {
            name: int(entry["value"])
            for name, entry in found.items()
            if isinstance(entry, dict) and "value" in entry
        }
        missing = [n for n in names if n not in values]
        if missing:
            raise KeyError(f"varnishstat has no counter(s) {', '.join(missing)}")
        return values

    def admin(self, *command: str) -> str:
        """Run a varnishadm command (e.g. ``backend.list``); return its output or raise."""
        varnishadm = shutil.which("varnishadm")
        if varnishadm is None:
            raise ServiceBinaryNotFound(VARNISHD_NOT_FOUND)
        argv = [varnishadm, "-n", str(self.instance_dir), *command]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        if done.returncode != 0:
            raise VarnishCommandError(
                f"varnishadm {' '.join(command)} failed ({done.returncode}): "
                f"{(done.stdout + done.stderr).strip()}"
            )
        return done.stdout

    def _argv(self, port: int) -> list[str]:
        self.vcl_path.write_text(self.vcl_text, encoding="utf-8")
        argv = [
            self.binary,
            "-F",
            "-j",
            "none",
            "-n",
            str(self.instance_dir),
            "-a",
            f"{self.host}:{port}",
            "-T",
            f"{self.host}:0",
            "-f",
            str(self.vcl_path),
            "-s",
            self._storage,
        ]
        for name, value in self._params.items():
            argv += ["-p", f"{name}={value}"]
        return argv + list(self._extra_args)

    def _probe(self, port: int, pid: int, timeout: float) -> None:
        """An HTTP/1.1 request without Host: the built-in VCL answers 400 without a backend."""
        with socket.create_connection((self.host, port), timeout=timeout) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        head = reply.split(b"\r\n\r\n", 1)[0].lower()
        if not head.startswith(b"http/1.1 ") or b"\r\nx-varnish:" not in head:
            raise ProbeFailed(f"port {port} did not answer as Varnish: {reply[:80]!r}")
