"""The `ledger witness`, `ledger mirror` and `ledger cluster` commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the witness, mirror and cluster subcommands."""
    witness = subparsers.add_parser("witness", help="run a witness node")
    witness_commands = witness.add_subparsers(dest="witness_command", metavar="COMMAND")
    witness_commands.required = True
    serve = witness_commands.add_parser(
        "serve",
        help="cosign checkpoints of the given logs over C2SP tlog-witness",
        description="Serve POST /add-checkpoint. The first start creates the "
        "witness key (encrypted under LEDGER_PASSPHRASE) and writes the "
        "cosignature vkey to DIR/witness.vkey.",
    )
    serve.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="data folder"
    )
    serve.add_argument(
        "--listen",
        required=True,
        metavar="HOST:PORT",
        help="address to listen on (port 0 picks one), or unix:PATH for a Unix socket",
    )
    serve.add_argument(
        "--log",
        required=True,
        action="append",
        metavar="VKEY",
        help="a log's vkey, or a file holding it; the key name is the log origin (repeat for more logs, or more keys of one log)",
    )
    serve.add_argument(
        "--name",
        help="witness key name on first start (default witness.localhost/<DIR name>)",
    )
    serve.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="URL",
        help="a witness or mirror to compare checkpoints with (repeatable)",
    )
    serve.add_argument(
        "--gossip-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between gossip rounds",
    )
    serve.set_defaults(handler=_witness_serve)

    mirror = subparsers.add_parser(
        "mirror",
        help="follow a log through its tiles API and serve a verified copy",
        description="Fetch the log's checkpoints and entry bundles, re-hash "
        "every entry, check each checkpoint against the last, and serve the "
        "same /log/ read API. Forks are written to DIR/forks/.",
    )
    mirror.add_argument(
        "--source",
        required=True,
        metavar="URL",
        help="base URL of the log (serving /log/)",
    )
    mirror.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="data folder"
    )
    mirror.add_argument(
        "--listen", metavar="HOST:PORT", help="serve the copy on this address"
    )
    mirror.add_argument(
        "--log",
        metavar="VKEY",
        help="the log's vkey or a file holding it; required on the first start",
    )
    mirror.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between fetches",
    )
    mirror.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="URL",
        help="a witness or mirror to compare checkpoints with",
    )
    mirror.set_defaults(handler=_mirror)

    cluster = subparsers.add_parser(
        "cluster",
        help="run a local log with three witnesses and one mirror",
        description="Start the log, three witnesses and a mirror as separate "
        "processes, each with its own folder under DIR and its own port on "
        "127.0.0.1, print their URLs, and stop them all on Ctrl-C.",
    )
    cluster.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="data folder"
    )
    cluster.add_argument(
        "--witnesses", type=int, default=3, help="number of witnesses (default 3)"
    )
    cluster.add_argument(
        "--quorum", type=int, default=2, help="cosignatures needed (default 2)"
    )
    cluster.set_defaults(handler=_cluster)


def _witness_serve(args: argparse.Namespace) -> int:
    import asyncio

    from witnesses.keys import KeyFileError, PassphraseMissingError
    from witnesses.nodes import NodeConfigError, open_witness, parse_listen, run_witness

    try:
        host, port = parse_listen(args.listen)
        witness = open_witness(args.data, args.log, args.name)
    except PassphraseMissingError as error:
        print(f"ledger witness serve: {error}", file=sys.stderr)
        return 2
    except (NodeConfigError, KeyFileError) as error:
        print(f"ledger witness serve: {error}", file=sys.stderr)
        return 1
    print(witness.vkey, flush=True)
    asyncio.run(
        run_witness(witness, args.data, host, port, args.peer, args.gossip_interval)
    )
    return 0


def _mirror(args: argparse.Namespace) -> int:
    import asyncio

    from witnesses.mirror import MirrorError
    from witnesses.nodes import (
        NodeConfigError,
        mirror_log_vkey,
        parse_listen,
        run_mirror,
    )

    try:
        host, port = (None, 0) if args.listen is None else parse_listen(args.listen)
        vkey = mirror_log_vkey(args.data, args.log)
        asyncio.run(
            run_mirror(
                args.data, args.source, vkey, host, port, args.interval, args.peer
            )
        )
    except (NodeConfigError, MirrorError) as error:
        print(f"ledger mirror: {error}", file=sys.stderr)
        return 1
    return 0


def _cluster(args: argparse.Namespace) -> int:
    from witnesses.cluster import ClusterError, LocalCluster

    cluster = LocalCluster(args.data, witnesses=args.witnesses, quorum=args.quorum)
    try:
        cluster.start()
    except ClusterError as error:
        print(f"ledger cluster: {error}", file=sys.stderr)
        cluster.stop()
        return 1
    for line in cluster.describe():
        print(line, flush=True)
    try:
        cluster.wait()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0
