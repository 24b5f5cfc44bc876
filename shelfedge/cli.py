"""The ``shelfedge`` command line: the composition root of the project.

It is the one module allowed to import every package (origin, invalidation, edge adapters) to
wire them into processes; nothing imports it. Every process logs JSON lines (`shelfedge.logs`)
and traces when an OTLP endpoint is configured (`shelfedge.tracing`). Each sub-command reads the
settings of its process kind once: the origin's (`origin.settings.Settings`) or the invalidation
consumer's (`invalidation.settings.InvalidationSettings`); the dev supervisor reads both.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from invalidation.settings import InvalidationSettings
from origin.errors import OriginError, SettingsError
from origin.settings import Settings
from shelfedge.audience_command import add_audience_parser
from shelfedge.dlq_command import add_dlq_parser
from shelfedge.import_commands import add_catalog_parser
from shelfedge.ingest_commands import add_lists_parser, add_segments_parser
from shelfedge.logs import configure_logging
from shelfedge.topics_command import add_topics_parser
from shelfedge.tracing import configure_tracing

INVALIDATION_COMMANDS = ("consume", "events", "sell-out", "replay", "purges", "dlq")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shelfedge", description="Edge-augmented personalization for retail storefronts."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser(
        "dev", help="start the whole local stack with a live status view (make run)"
    )
    dev.add_argument(
        "--redis-cluster",
        action="store_true",
        help="start a local six-node Redis Cluster (3 masters, 3 replicas) instead of one Redis",
    )
    sub.add_parser("origin", help="serve the origin context service (uvicorn)")
    sub.add_parser("edge", help="serve the local edge in front of the origin")
    sub.add_parser("consume", help="run the invalidation consumer")
    sub.add_parser(
        "aggregate", help="fold experiment exposures/conversions from Kafka into Redis counters"
    )
    sub.add_parser(
        "context", help="keep shopper profiles and segments from the clickstream (consumer group)"
    )
    seed = sub.add_parser("seed", help="load the demo catalog and build every bundle")
    seed.add_argument(
        "--seed", type=int, default=None, help="catalog seed (SHELFEDGE_CATALOG_SEED)"
    )
    events = sub.add_parser("events", help="produce demo inventory/price events to Kafka")
    events.add_argument("--rate", type=float, default=50.0, help="events per second")
    events.add_argument("--duration", type=float, default=10.0, help="seconds (0 = forever)")
    sell_out = sub.add_parser("sell-out", help="produce a sell-out event for one SKU")
    sell_out.add_argument("sku")
    replay = sub.add_parser("replay", help="rebuild state and bundles from the Kafka log")
    replay.add_argument("--topic", action="append", required=True, help="topic (repeatable)")
    start = replay.add_mutually_exclusive_group(required=True)
    start.add_argument("--from-timestamp", type=int, help="unix milliseconds")
    start.add_argument("--from-offset", type=int, help="offset in every partition")
    replay.add_argument("--dry-run", action="store_true", help="report, change and purge nothing")
    canary = sub.add_parser(
        "canary", help="move the canary product's price and time when the edge serves it"
    )
    canary.add_argument("--interval", type=float, default=30.0, help="seconds between rounds")
    canary.add_argument("--timeout", type=float, default=60.0, help="seconds a round may wait")
    canary.add_argument("--rounds", type=int, default=0, help="rounds to run (0 = forever)")
    canary.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus port (0 = none; default SHELFEDGE_CANARY_METRICS_PORT or 8602)",
    )
    add_dlq_parser(sub)
    purges = sub.add_parser("purges", help="list or re-drive the purges a CDN refused (parked)")
    purges_sub = purges.add_subparsers(dest="purges_command", required=True)
    parked = purges_sub.add_parser("parked", help="list parked purges")
    parked.add_argument(
        "--purger", action="append", help="purger (repeatable; default: SHELFEDGE_PURGERS)"
    )
    redrive = purges_sub.add_parser("redrive", help="put parked purges back into their queue")
    redrive.add_argument("--purger", required=True, help="the purger they were parked for")
    which = redrive.add_mutually_exclusive_group(required=True)
    which.add_argument("tags", nargs="*", default=[], help="the parked tags to re-drive")
    which.add_argument("--all", action="store_true", help="re-drive every parked tag")
    imports = sub.add_parser(
        "import", help="import retailer data: a product feed, recommendation lists or an audience"
    )
    kinds = imports.add_subparsers(dest="import_kind", required=True)
    add_catalog_parser(kinds)
    add_lists_parser(kinds)
    add_audience_parser(kinds)
    add_segments_parser(sub)
    add_topics_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging()
    try:
        configure_tracing(f"shelfedge-{args.command}")
        if args.command in INVALIDATION_COMMANDS:
            from shelfedge.invalidation_commands import run_invalidation_command

            consumer_settings = InvalidationSettings.from_env()
            return run_invalidation_command(args.command, args, consumer_settings)
        settings = Settings.from_env()
        if args.command == "canary":
            from shelfedge.canary_command import metrics_port_of, run_canary

            return asyncio.run(
                run_canary(
                    settings,
                    InvalidationSettings.from_env(),
                    interval_s=args.interval,
                    timeout_s=args.timeout,
                    rounds=args.rounds,
                    metrics_port=metrics_port_of(args.metrics_port),
                )
            )
        if args.command == "dev":
            from shelfedge.devstack import run_dev_stack

            return run_dev_stack(
                settings, InvalidationSettings.from_env(), redis_cluster=args.redis_cluster
            )
    except SettingsError as exc:
        print(f"shelfedge: configuration error: {exc}", file=sys.stderr)
        return 2
    except OriginError as exc:
        print(f"shelfedge {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    try:
        return _dispatch(args, settings)
    except OriginError as exc:
        print(f"shelfedge {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command: str = args.command
    if command == "origin":
        from origin.web.serve import serve_origin

        return serve_origin(settings)
    if command == "seed":
        from origin.web.serve import seed_command

        return asyncio.run(seed_command(settings, args.seed))
    if command == "edge":
        from edge.adapters.local_server import EdgeCredentials, serve_edge

        credentials = EdgeCredentials(
            settings.event_keys, settings.edge_config_token, settings.edge_purge_token
        )
        return serve_edge(
            settings.edge_port,
            settings.edge_origin_url,
            settings.segment_secret,
            credentials=credentials,
            consent_required=settings.consent_policy == "required",
            debug_headers=settings.edge_debug_headers,
            segment_refresh_after_s=settings.edge_segment_refresh_after_s,
        )
    if command == "import":
        if args.import_kind == "catalog":
            from shelfedge.import_commands import run_import_command

            return run_import_command(args, settings)
        if args.import_kind == "audience":
            from shelfedge.audience_command import import_audience_command

            return asyncio.run(import_audience_command(settings, args))
        from shelfedge.ingest_commands import import_lists_command

        return asyncio.run(import_lists_command(settings, args))
    if command == "segments":
        from shelfedge.ingest_commands import segments_sync_command

        return asyncio.run(segments_sync_command(settings, args))
    if command == "aggregate":
        from origin.events.service import aggregate_command

        return aggregate_command(settings)
    if command == "context":
        from origin.context.service import context_command

        return context_command(settings)
    if command == "topics":
        from shelfedge.topics_command import run_topics

        return asyncio.run(run_topics(settings, args))
    raise AssertionError(command)


if __name__ == "__main__":
    sys.exit(main())
