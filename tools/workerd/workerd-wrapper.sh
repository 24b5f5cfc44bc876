#!/bin/sh
# workerd, run with shelfedge's offline Pyodide dev bundle.
#
# Point wrangler/miniflare at this file with MINIFLARE_WORKERD_PATH. It execs the real workerd
# binary from node_modules (so workerd keeps miniflare's pipes, fd 3 included, and its signals),
# inserting --pyodide-bundle-disk-cache-dir after the `serve`/`test` sub-command. workerd loads
# pyodide_dev.capnp.bin from there only for Workers with the compatibility flag
# python_workers_development; build it with `python -m tools.workerd.build_pyodide_bundle`.
#
# Overrides: SHELFEDGE_WORKERD_BIN (the workerd binary), SHELFEDGE_PYODIDE_BUNDLE_DIR (the bundle
# folder). This script must never download anything or change its arguments beyond that insert.
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
root=$(CDPATH='' cd -- "$here/../.." && pwd)
real="${SHELFEDGE_WORKERD_BIN:-$root/node_modules/@cloudflare/workerd-linux-64/bin/workerd}"
bundle_dir="${SHELFEDGE_PYODIDE_BUNDLE_DIR:-$root/.toolchain/pyodide-bundle}"

if [ ! -x "$real" ]; then
    echo "workerd-wrapper: no workerd binary at $real (run \`npm install\`)" >&2
    exit 127
fi

if [ "$#" -eq 0 ]; then
    exec "$real"
fi

case "$1" in
serve | test)
    if [ ! -f "$bundle_dir/pyodide_dev.capnp.bin" ]; then
        echo "workerd-wrapper: $bundle_dir/pyodide_dev.capnp.bin is missing" \
            "(run \`uv run python -m tools.workerd.build_pyodide_bundle\`)" >&2
        # Read the config miniflare pipes in, so it reports this message instead of EPIPE.
        [ -t 0 ] || cat >/dev/null
        exit 1
    fi
    command=$1
    shift
    exec "$real" "$command" "--pyodide-bundle-disk-cache-dir=$bundle_dir" "$@"
    ;;
*)
    exec "$real" "$@"
    ;;
esac
