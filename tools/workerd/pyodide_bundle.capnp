# The offline Pyodide dev bundle for workerd, as a Cap'n Proto constant.
#
# `Bundle`, `Module` and `ModuleType` repeat the field numbers and types of workerd's jsg bundle
# schema (src/workerd/jsg/modules.capnp in workerd 1.20261117.x): only the wire layout matters,
# so names and the file id are ours. tools/workerd/build_pyodide_bundle.py copies this file next
# to the patched `pyodide.asm.mjs` and the npm `pyodide` wasm and stdlib, then runs
#   capnp eval -o binary pyodide_bundle.capnp pyodideBundle > pyodide_dev.capnp.bin
# workerd reads that file from --pyodide-bundle-disk-cache-dir when the compatibility flag
# `python_workers_development` is on. Never point a deployed Worker at it.

@0xda19001fcdd944f5;

struct Bundle {
  modules @0 :List(Module);
}

struct Module {
  name @0 :Text;
  union {
    src @1 :Data;
    wasm @4 :Data;
    data @5 :Data;
    json @6 :Text;
  }
  tsDeclaration @3 :Text;
  type @2 :ModuleType;
  compileCache @7 :Data;
}

enum ModuleType {
  bundle @0;
  builtin @1;
  internal @2;
}

const pyodideBundle :Bundle = (
  modules = [
    ( name = "pyodideRuntime-internal:pyodide.asm",
      src = embed "pyodide.asm.mjs",
      type = internal ),
    ( name = "pyodideRuntime-internal:pyodide.asm.wasm",
      wasm = embed "pyodide.asm.wasm",
      type = internal ),
    ( name = "pyodideRuntime-internal:python_stdlib.zip",
      data = embed "python_stdlib.zip",
      type = internal ),
  ]
);
