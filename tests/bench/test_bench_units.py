"""The benchmarks' pure parts: percentiles, target verdicts, options, HTTP framing, specs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from bench.consumer_group import BacklogTooSmall, GroupRun, run_growing
from bench.cpu import CpuMeter
from bench.errors import BenchError, BenchRunError
from bench.invalidation import WINDOW_MS, Plan
from bench.invalidation import main as invalidation_main
from bench.loadgen import LoadSpec, _parse_head
from bench.pipeline_probe import DistinctRecords
from bench.report import (
    BenchOptions,
    Target,
    at_least,
    at_most,
    parse_options,
    ratio,
    run_benchmark,
)
from bench.stats import Summary, percentile
from invalidation.records import Record
from shelfedge.localstack import RedisServer


@pytest.mark.parametrize(
    ("samples", "q", "expected"),
    [
        ([1.0], 0.5, 1.0),
        ([1.0, 2.0], 0.5, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
        ([float(i) for i in range(1, 101)], 0.99, 99.0),
        ([float(i) for i in range(1, 101)], 1.0, 100.0),
        ([float(i) for i in range(1, 1001)], 0.99, 990.0),
    ],
)
def test_percentile_is_nearest_rank(samples: list[float], q: float, expected: float) -> None:
    assert percentile(samples, q) == expected


@pytest.mark.parametrize("q", [0.0, -0.1, 1.5])
def test_percentile_rejects_quantiles_outside_0_1(q: float) -> None:
    with pytest.raises(ValueError, match="quantile"):
        percentile([1.0], q)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 0.5)


def test_summary_sorts_and_scales() -> None:
    summary = Summary.of([0.003, 0.001, 0.002]).scaled(1000.0)
    assert (summary.count, summary.p50, summary.max) == (3, 2.0, 3.0)
    assert summary.mean == pytest.approx(2.0)
    assert Summary.from_dict(summary.to_dict()) == summary


@pytest.mark.parametrize(
    ("target", "met", "verdict"),
    [
        (at_least("ratio", 0.7, 0.7), True, "PASS"),
        (at_least("ratio", 0.69, 0.7), False, "MISS"),
        (at_most("p99", 10.0, 10.0, "ms"), True, "PASS"),
        (at_most("p99", 10.5, 10.0, "ms"), False, "MISS"),
    ],
)
def test_target_verdicts(target: Target, met: bool, verdict: str) -> None:
    assert target.met is met
    assert target.line().endswith(verdict)


def test_target_line_avoids_exponents() -> None:
    assert "measured 1764 ms" in at_most("p99", 1763.6, 250.0, "ms").line()


def test_ratio_refuses_an_empty_baseline() -> None:
    assert ratio(1.0, 4.0, "x") == 0.25
    with pytest.raises(BenchError, match="baseline"):
        ratio(1.0, 0.0, "x")


@pytest.mark.parametrize(
    ("argv", "env", "short", "strict"),
    [
        ([], "", False, False),
        (["--short"], "", True, False),
        ([], "1", True, False),
        ([], "0", False, False),
        (["--strict"], "yes", True, True),
    ],
)
def test_options_from_flags_and_env(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], env: str, short: bool, strict: bool
) -> None:
    monkeypatch.setenv("BENCH_SHORT", env)
    options = parse_options("bench.test", "test", argv)
    assert (options.short, options.strict) == (short, strict)


def test_a_bad_bench_short_value_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_SHORT", "maybe")
    with pytest.raises(SystemExit):
        parse_options("bench.test", "test", [])


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 12", (200, 12)),
        (b"HTTP/1.1 304 Not Modified\r\nETag: x\r\nContent-Length: 0", (304, 0)),
    ],
)
def test_response_heads_are_framed_by_content_length(
    head: bytes, expected: tuple[int, int]
) -> None:
    assert _parse_head(head) == expected


@pytest.mark.parametrize(
    ("head", "problem"),
    [
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked", "chunked"),
        (b"HTTP/1.1 200 OK\r\nserver: x", "Content-Length"),
        (b"SPDY 200", "status line"),
    ],
)
def test_unframeable_responses_are_errors(head: bytes, problem: str) -> None:
    with pytest.raises(BenchRunError, match=problem):
        _parse_head(head)


def test_load_spec_round_trips_and_stays_on_loopback() -> None:
    spec = LoadSpec(port=8080, path="/x?y=1", headers=(("cookie", "a=b"),), rate=500.0)
    assert LoadSpec.from_json(spec.to_json()) == spec
    assert spec.request_bytes().startswith(b"GET /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
    with pytest.raises(BenchRunError, match="loopback"):
        LoadSpec(port=80, path="/", host="example.com")


def _body(targets: list[Target]) -> Callable[[BenchOptions], list[Target]]:
    def body(options: BenchOptions) -> list[Target]:
        assert options.short
        return targets

    return body


def _broken(options: BenchOptions) -> list[Target]:
    raise BenchRunError("the baseline never answered")


@pytest.mark.parametrize(
    ("argv", "targets", "code"),
    [
        (["--short"], [at_least("r", 1.0, 0.5)], 0),
        (["--short"], [at_least("r", 0.1, 0.5)], 0),
        (["--short", "--strict"], [at_least("r", 1.0, 0.5)], 0),
        (["--short", "--strict"], [at_least("r", 0.1, 0.5)], 1),
    ],
)
def test_exit_code_is_zero_unless_strict_and_missed(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], targets: list[Target], code: int
) -> None:
    monkeypatch.delenv("BENCH_SHORT", raising=False)
    assert run_benchmark("bench.test", "test", _body(targets), argv) == code


def test_a_broken_run_exits_2_and_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_benchmark("bench.test", "test", _broken, ["--short"]) == 2
    assert "broken: the baseline never answered" in capsys.readouterr().err


async def test_cpu_meter_divides_both_processes_cpu_by_records(redis_server: RedisServer) -> None:
    # One node on purpose: the meter reads that server's own INFO cpu (the bench starts one).
    client = Redis.from_url(redis_server.url)
    meter = CpuMeter(client)
    try:
        with pytest.raises(BenchRunError, match="without start"):
            await meter.stop(1)
        await meter.start()
        async with client.pipeline(transaction=False) as pipe:
            for n in range(20_000):
                pipe.set(f"cpu-meter:{n % 10}", n)
            await pipe.execute()
        sum(n * n for n in range(200_000))  # CPU in this process too
        cost = await meter.stop(1000)
        assert cost.process_us > 0
        assert cost.redis_us > 0, "20,000 SETs cost the server measurable CPU"
        assert "this process" in str(cost)
        await meter.start()
        with pytest.raises(BenchRunError, match="no records"):
            await meter.stop(0)
        await client.delete(*[f"cpu-meter:{n}" for n in range(10)])
    finally:
        await client.aclose()


def test_distinct_records_count_each_offset_once_across_rewinds() -> None:
    def run(partition: int, offsets: range) -> list[Record]:
        return [Record("inventory.v1", partition, o, None, b"{}", 0) for o in offsets]

    distinct = DistinctRecords()
    assert distinct.new_in(run(0, range(0, 100)) + run(1, range(0, 50))) == 150
    # after a rebalance partition 0 rewinds to its committed offset 60 and reads on
    assert distinct.new_in(run(0, range(60, 120)) + run(1, range(50, 60))) == 20 + 10
    # a rewind inside one batch: the second copy is a redelivery
    assert distinct.new_in(run(0, range(120, 130)) + run(0, range(125, 140))) == 10 + 10
    assert distinct.new_in(run(2, range(5, 8))) == 3


def test_the_invalidation_window_is_one_setting_for_every_phase() -> None:
    options = BenchOptions(short=True, strict=False)
    assert Plan.for_options(options).window_ms == WINDOW_MS
    plan = Plan.for_options(options, "apache-kafka", 40)
    assert (plan.broker, plan.window_ms, plan.backlog) == ("apache-kafka", 40, 10_000)


@pytest.mark.parametrize("value", ["0", "10001", "-5", "2.5", "fast"])
def test_a_bad_invalidation_window_is_refused_before_anything_starts(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        invalidation_main(["--window-ms", value])
    assert exited.value.code == 2
    assert "--window-ms" in capsys.readouterr().err


def test_a_group_run_that_became_stable_too_late_runs_again_with_twice_the_backlog() -> None:
    asked: list[int] = []
    said: list[str] = []

    async def run(backlog: int) -> GroupRun:
        asked.append(backlog)
        if len(asked) < 3:
            raise BacklogTooSmall(f"only 0 of {backlog} records were left")
        return GroupRun(2, backlog // 2, 1.0, 50.0, 8.0)

    result = asyncio.run(run_growing(run, 30_000, said.append))
    assert asked == [30_000, 60_000, 120_000]
    assert result.records == 60_000
    assert said == [
        "    only 0 of 30000 records were left: again with 60000",
        "    only 0 of 60000 records were left: again with 120000",
    ]


def test_a_group_run_too_late_every_time_is_an_error_and_other_errors_are_not_retried() -> None:
    asked: list[int] = []

    async def late(backlog: int) -> GroupRun:
        asked.append(backlog)
        raise BacklogTooSmall(f"only 0 of {backlog} records were left")

    with pytest.raises(BacklogTooSmall, match="of 40 records"):
        asyncio.run(run_growing(late, 10, lambda _: None, attempts=3))
    assert asked == [10, 20, 40]

    async def broken(backlog: int) -> GroupRun:
        asked.append(backlog)
        raise BenchRunError("a consumer process exited")

    asked.clear()
    with pytest.raises(BenchRunError, match="exited"):
        asyncio.run(run_growing(broken, 10, lambda _: None))
    assert asked == [10]
