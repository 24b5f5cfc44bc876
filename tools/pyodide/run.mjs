// Run shelfedge's pure-Python code inside real Pyodide under Node, offline, for many requests.
//
// What it is for: parity tests (CPython vs Pyodide, byte for byte) and benchmarks that time code
// inside Pyodide. It loads Pyodide once from node_modules/pyodide (no CDN), copies the prepared
// pure-Python packages (.toolchain/pyodide-wheels/site, see prepare_wheels.py) and the repository
// packages named by --package into Pyodide's in-memory file system (so nothing Python does inside
// can touch the checkout), puts them on sys.path, then serves line-delimited JSON on stdin/stdout:
//
//   startup, once:  {"ready": true, "pyodide_version": "...", "python_version": "3.14.x",
//                    "platform": "emscripten", "load_ms": 1234.5, "copied_files": 42}
//   request:        {"id": 1, "entry": "package.module:function", "payload": "<string>"}
//   response:       {"id": 1, "ok": true, "result": "<string>"}
//              or   {"id": 1, "ok": false, "error": "<traceback text>"}
//
// Requests are answered one at a time, in order. The process exits 0 when stdin closes.
// What it must never do: write anything but protocol lines to stdout (Python's stdout/stderr and
// console.log all go to stderr), reach the network, or write into the repository.
//
// Usage: node tools/pyodide/run.mjs [--repo-root DIR] [--site DIR] [--package NAME]...
// (default packages: edge, fragments; default site: <repo-root>/.toolchain/pyodide-wheels/site)

import { once } from "node:events";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { performance } from "node:perf_hooks";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_PACKAGES = ["edge", "fragments"];
const REPO_MOUNT = "/shelfedge/repo";
const SITE_MOUNT = "/shelfedge/site";
const RUNNER_MOUNT = "/shelfedge/runner";
const DISPATCH_MODULE = "_shelfedge_pyodide_dispatch";
const SKIPPED_NAMES = new Set(["__pycache__", "node_modules"]);

// stdout belongs to the protocol: keep a handle, then send every console method to stderr.
const protocolOut = process.stdout;
for (const method of ["log", "info", "debug", "warn"]) {
  console[method] = (...args) => console.error(...args);
}
protocolOut.on("error", (error) => {
  // The reader went away (EPIPE): nobody can receive answers any more.
  process.stderr.write(`run.mjs: stdout closed: ${error.message}\n`);
  process.exit(0);
});

class UsageError extends Error {}

function parseArguments(argv) {
  const options = { repoRoot: path.resolve(HERE, "..", ".."), site: null, packages: [] };
  for (let index = 0; index < argv.length; index += 1) {
    const flag = argv[index];
    const value = argv[index + 1];
    if (!["--repo-root", "--site", "--package"].includes(flag)) {
      throw new UsageError(`unknown argument ${JSON.stringify(flag)}`);
    }
    if (value === undefined) {
      throw new UsageError(`${flag} needs a value`);
    }
    index += 1;
    if (flag === "--repo-root") options.repoRoot = path.resolve(value);
    if (flag === "--site") options.site = path.resolve(value);
    if (flag === "--package") options.packages.push(value);
  }
  options.site ??= path.join(options.repoRoot, ".toolchain", "pyodide-wheels", "site");
  if (options.packages.length === 0) options.packages = DEFAULT_PACKAGES;
  for (const name of options.packages) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new UsageError(`--package ${JSON.stringify(name)} is not a top-level folder name`);
    }
    if (!fs.statSync(path.join(options.repoRoot, name), { throwIfNoEntry: false })?.isDirectory()) {
      throw new UsageError(`--package ${name}: no folder ${path.join(options.repoRoot, name)}`);
    }
  }
  if (!fs.statSync(options.site, { throwIfNoEntry: false })?.isDirectory()) {
    throw new UsageError(
      `${options.site} is missing: run \`uv run python -m tools.pyodide.prepare_wheels\``,
    );
  }
  return options;
}

function pyodideDirectory(repoRoot) {
  const require = createRequire(path.join(repoRoot, "package.json"));
  try {
    return path.dirname(require.resolve("pyodide/package.json"));
  } catch (error) {
    throw new UsageError(
      `npm package pyodide not found from ${repoRoot}: run \`npm ci\` there (${error.message})`,
    );
  }
}

// Copy a host folder into Pyodide's in-memory FS; returns the number of files copied.
function copyTree(FS, hostDirectory, memoryDirectory) {
  FS.mkdirTree(memoryDirectory);
  let copied = 0;
  for (const entry of fs.readdirSync(hostDirectory, { withFileTypes: true })) {
    if (entry.name.startsWith(".") || SKIPPED_NAMES.has(entry.name)) continue;
    const hostPath = path.join(hostDirectory, entry.name);
    const memoryPath = `${memoryDirectory}/${entry.name}`;
    const stat = fs.statSync(hostPath);
    if (stat.isDirectory()) {
      copied += copyTree(FS, hostPath, memoryPath);
    } else if (stat.isFile() && !entry.name.endsWith(".pyc")) {
      FS.writeFile(memoryPath, fs.readFileSync(hostPath));
      copied += 1;
    }
  }
  return copied;
}

function writeToStderr(buffer) {
  process.stderr.write(buffer);
  return buffer.length;
}

async function loadRuntime(options) {
  const started = performance.now();
  const indexDirectory = pyodideDirectory(options.repoRoot);
  const { loadPyodide, version } = await import(
    pathToFileURL(path.join(indexDirectory, "pyodide.mjs")).href
  );
  const pyodide = await loadPyodide({
    indexURL: indexDirectory + path.sep,
    packages: [],
    stdout: (line) => process.stderr.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
  });
  pyodide.setStdout({ write: writeToStderr });
  pyodide.setStderr({ write: writeToStderr });

  let copiedFiles = copyTree(pyodide.FS, options.site, SITE_MOUNT);
  for (const name of options.packages) {
    copiedFiles += copyTree(pyodide.FS, path.join(options.repoRoot, name), `${REPO_MOUNT}/${name}`);
  }
  pyodide.FS.mkdirTree(RUNNER_MOUNT);
  pyodide.FS.writeFile(
    `${RUNNER_MOUNT}/${DISPATCH_MODULE}.py`,
    fs.readFileSync(path.join(HERE, "dispatch.py")),
  );
  pyodide.runPython(
    [
      "import sys",
      `sys.path[0:0] = [${JSON.stringify(REPO_MOUNT)}, ${JSON.stringify(RUNNER_MOUNT)}]`,
      `sys.path.append(${JSON.stringify(SITE_MOUNT)})`,
    ].join("\n"),
  );
  const module = pyodide.pyimport(DISPATCH_MODULE);
  const facts = JSON.parse(module.describe());
  const dispatch = module.dispatch; // borrowed from `module`, which stays alive with it
  return {
    dispatch,
    ready: {
      ready: true,
      pyodide_version: version,
      python_version: facts.python_version,
      platform: facts.platform,
      load_ms: Math.round((performance.now() - started) * 10) / 10,
      copied_files: copiedFiles,
    },
  };
}

async function send(message) {
  if (!protocolOut.write(`${JSON.stringify(message)}\n`)) {
    await once(protocolOut, "drain");
  }
}

function parseRequest(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (error) {
    return { error: `invalid request: not JSON (${error.message})` };
  }
  if (request === null || typeof request !== "object" || Array.isArray(request)) {
    return { error: "invalid request: expected a JSON object" };
  }
  const id = Number.isInteger(request.id) ? request.id : null;
  if (id === null) return { id, error: "invalid request: 'id' must be an integer" };
  if (typeof request.entry !== "string") {
    return { id, error: "invalid request: 'entry' must be a string" };
  }
  if (typeof request.payload !== "string") {
    return { id, error: "invalid request: 'payload' must be a string" };
  }
  return { id, entry: request.entry, payload: request.payload };
}

async function serve(dispatch) {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === "") continue;
    const request = parseRequest(line);
    if (request.error !== undefined) {
      await send({ id: request.id ?? null, ok: false, error: request.error });
      continue;
    }
    let outcome;
    try {
      outcome = dispatch(request.entry, request.payload);
    } catch (error) {
      // dispatch() turns every Python exception into a result, so this is the runtime itself
      // failing (a fatal Pyodide error): answer, then stop, since the interpreter is unusable.
      const failure = `Pyodide runtime failure: ${error.stack ?? error}`;
      await send({ id: request.id, ok: false, error: failure });
      process.exit(70);
    }
    const [ok, text] = outcome.toJs();
    outcome.destroy();
    await send(
      ok ? { id: request.id, ok: true, result: text } : { id: request.id, ok: false, error: text },
    );
  }
}

async function main() {
  const options = parseArguments(process.argv.slice(2));
  const { dispatch, ready } = await loadRuntime(options);
  await send(ready);
  await serve(dispatch);
  process.exit(0);
}

main().catch((error) => {
  // A setup problem gets its one-line fix (exit 2); anything else its stack (exit 1).
  const usage = error instanceof UsageError;
  process.stderr.write(`run.mjs: ${usage ? error.message : (error.stack ?? error)}\n`);
  process.exit(usage ? 2 : 1);
});
