#!/usr/bin/env bash
# Build a WASI command module from a Python entry module: tools/wasi/build.sh ENTRY.py OUT.wasm
#
# What it is for: running py2wasm with the toolchain that tools/wasi/install-toolchain.sh
# installed, stripping the result's custom sections (debug info, names), and printing the raw,
# stripped and gzipped sizes. OUT.wasm is the stripped module. Beside it:
#   OUT.wasm.manifest   key=value lines: the inputs' digest, the output's sha256, sizes, timing,
#                       and the first-party sources that went in (from build_inputs.py)
#   OUT.wasm.build.log  py2wasm's output of the last build
# A build is skipped when the digest of its inputs (the entry module and every first-party
# module it imports, the toolchain stamp, this script) matches the manifest and OUT.wasm is the
# file the manifest describes. Set SHELFEDGE_WASI_FORCE=1 to rebuild anyway.
#
# Builds are serialized with a lock in the toolchain folder: py2wasm always works in one fixed
# folder inside its own install (PY2WASM_WORK_DIR), which this script clears around each build.
#
# What it must never do: install anything (a missing toolchain is an error naming the install
# script), reach the network, or leave a partial OUT.wasm behind a failed build.
set -euo pipefail

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 2 ]] || die "usage: tools/wasi/build.sh ENTRY.py OUT.wasm"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
toolchain_dir="${SHELFEDGE_WASI_TOOLCHAIN_DIR:-$repo_root/.toolchain/wasi}"
env_file="$toolchain_dir/toolchain.env"
stamp_file="$toolchain_dir/installed.stamp"

[[ -f "$1" ]] || die "entry module not found: $1"
[[ "$1" == *.py ]] || die "entry module must be a .py file: $1"
[[ "$2" == *.wasm ]] || die "output must end in .wasm: $2"
entry="$(realpath "$1")"
out="$(realpath -m "$2")"
manifest="$out.manifest"
build_log="$out.build.log"

if [[ ! -f "$stamp_file" || ! -f "$env_file" ]]; then
    die "the WASI toolchain is not installed in $toolchain_dir: run tools/wasi/install-toolchain.sh"
fi
# shellcheck source=/dev/null
source "$env_file"
for var in PY2WASM PY2WASM_WORK_DIR TOOLCHAIN_PYTHON WASI_SDK_DIR WASM_STRIP TOOLCHAIN_STAMP; do
    [[ -n "${!var:-}" ]] || die "$env_file does not set $var: rerun tools/wasi/install-toolchain.sh"
done
[[ "$(cat "$stamp_file")" == "$TOOLCHAIN_STAMP" ]] \
    || die "$env_file and $stamp_file disagree: rerun tools/wasi/install-toolchain.sh"
for tool in "$PY2WASM" "$TOOLCHAIN_PYTHON" "$WASI_SDK_DIR/bin/clang" "$WASM_STRIP"; do
    [[ -x "$tool" ]] || die "$tool is missing: rerun tools/wasi/install-toolchain.sh"
done

mkdir -p "$(dirname "$out")"
exec 9>"$toolchain_dir/build.lock"
flock 9

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
manifest_value() { sed -n "s/^$1=//p" "$manifest" | head -n 1; }
print_sizes() {
    printf '%s: raw %s bytes, stripped %s bytes, gzip -9 %s bytes (%s)\n' \
        "$out" "$(manifest_value raw_bytes)" "$(manifest_value stripped_bytes)" \
        "$(manifest_value gzip_bytes)" "$1"
}

sources="$("$TOOLCHAIN_PYTHON" "$here/build_inputs.py" --root "$repo_root" "$entry")" \
    || die "could not list the sources of $entry"
entry_shown="${entry#"$repo_root"/}"
inputs_sha256="$(
    {
        printf 'stamp %s\n' "$TOOLCHAIN_STAMP"
        printf 'build.sh %s\n' "$(sha256_of "${BASH_SOURCE[0]}")"
        printf 'entry %s\n' "$entry_shown"
        printf '%s\n' "$sources"
    } | sha256sum | cut -d' ' -f1
)"

if [[ "${SHELFEDGE_WASI_FORCE:-0}" != "1" && -f "$out" && -f "$manifest" \
    && "$(manifest_value inputs_sha256)" == "$inputs_sha256" \
    && "$(manifest_value output_sha256)" == "$(sha256_of "$out")" ]]; then
    print_sizes "up to date, built in $(manifest_value build_seconds) s"
    exit 0
fi

work_dir="$(mktemp -d)"
# py2wasm's own build folder holds ~40 MB per entry after a build: never let it pile up.
trap 'rm -rf "$work_dir" "$PY2WASM_WORK_DIR"' EXIT
rm -rf "$PY2WASM_WORK_DIR"
log "building $entry_shown with py2wasm (cold ~70 s, warm ~30 s); log: $build_log"
started=$SECONDS
if ! (
    cd "$work_dir"
    export WASI_SDK_DIR
    export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"
    "$PY2WASM" "$entry" -o "$work_dir/raw.wasm"
) >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    die "py2wasm failed for $entry_shown (full log: $build_log)"
fi
build_seconds=$((SECONDS - started))
[[ -f "$work_dir/raw.wasm" ]] || die "py2wasm reported success but wrote no module (log: $build_log)"

"$WASM_STRIP" -o "$work_dir/stripped.wasm" "$work_dir/raw.wasm" \
    || die "$WASM_STRIP failed on the raw module"
magic="$(head -c 4 "$work_dir/stripped.wasm" | od -An -tx1 | tr -d ' \n')"
[[ "$magic" == "0061736d" ]] || die "the stripped output is not a wasm module (magic $magic)"

raw_bytes="$(stat -c %s "$work_dir/raw.wasm")"
stripped_bytes="$(stat -c %s "$work_dir/stripped.wasm")"
gzip_bytes="$(gzip -9 -c "$work_dir/stripped.wasm" | wc -c)"

cp "$work_dir/stripped.wasm" "$out.partial"
mv -f "$out.partial" "$out"
{
    printf 'inputs_sha256=%s\n' "$inputs_sha256"
    printf 'output_sha256=%s\n' "$(sha256_of "$out")"
    printf 'entry=%s\n' "$entry_shown"
    printf 'raw_bytes=%s\n' "$raw_bytes"
    printf 'stripped_bytes=%s\n' "$stripped_bytes"
    printf 'gzip_bytes=%s\n' "$gzip_bytes"
    printf 'build_seconds=%s\n' "$build_seconds"
    printf 'stripped_with=%s\n' "$(basename "$WASM_STRIP")"
    printf '%s\n' "$sources" | sed 's/^/source=/'
} >"$manifest.partial"
mv -f "$manifest.partial" "$manifest"
print_sizes "built in $build_seconds s"
