"""The ``shelfedge`` command line: the composition root of the project.

It is the one module allowed to import every package (origin, invalidation, edge adapters) to
wire them into processes; nothing imports it. Each sub-command reads the settings of its
process kind once: the origin's (`origin.settings.Settings`) or the invalidation consumer's
(`invalidation.settings.InvalidationSettings`); the dev supervisor reads both.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from invalidation.settings import InvalidationSettings
from origin.errors import OriginError, SettingsError
from origin.settings import Settings
from shelfedge.ingest_commands import add_commands as add_ingest_commands

INVALIDATION_COMMANDS = ("consume", "events", "sell-out", "replay", "purges")


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
    add_ingest_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in INVALIDATION_COMMANDS:
            from shelfedge.invalidation_commands import run_invalidation_command

            consumer_settings = InvalidationSettings.from_env()
            return run_invalidation_command(args.command, args, consumer_settings)
        settings = Settings.from_env()
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
        from edge.adapters.local_server import serve_edge

        return serve_edge(settings.edge_port, settings.edge_origin_url, settings.segment_secret)
    if command == "import":
        from shelfedge.ingest_commands import import_lists_command

        return asyncio.run(import_lists_command(settings, args))
    if command == "segments":
        from shelfedge.ingest_commands import segments_sync_command

        return asyncio.run(segments_sync_command(settings, args))
    if command == "aggregate":
        from origin.events.service import aggregate_command

        return aggregate_command(settings)
    raise AssertionError(command)


if __name__ == "__main__":
    sys.exit(main())
