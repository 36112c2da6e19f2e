"""`ledger tsa ...`: run a standalone time-stamping authority."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `tsa` command and its `serve` subcommand."""
    tsa = subparsers.add_parser("tsa", help="RFC 3161 time-stamping authority")
    commands = tsa.add_subparsers(dest="tsa_command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve POST /tsa; creates the TSA key and DIR/tsa-root.pem on first start",
    )
    serve.add_argument(
        "--data",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder of the TSA key, certificates and serial epoch",
    )
    serve.add_argument(
        "--listen",
        required=True,
        metavar="HOST:PORT",
        help="address to listen on, for example 127.0.0.1:3180 (port 0 picks one)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes sharing the port (default 1)",
    )
    serve.add_argument(
        "--key-type",
        default="ecdsa-p256",
        choices=("ecdsa-p256", "rsa-2048", "rsa-3072"),
        help="key type created on first start (default ecdsa-p256)",
    )
    serve.add_argument(
        "--policy",
        default=None,
        metavar="OID",
        help="policy OID written into every token (default: the built-in 2.25 OID)",
    )
    serve.add_argument(
        "--accept-policy",
        action="append",
        default=[],
        metavar="OID",
        help="further policy OID a request may ask for (repeatable)",
    )
    serve.add_argument(
        "--key",
        type=Path,
        metavar="FILE",
        help="operator's encrypted PKCS#8 PEM TSA key, instead of the created one",
    )
    serve.add_argument(
        "--cert",
        type=Path,
        metavar="FILE",
        help="operator's TSA certificate PEM (with --key)",
    )
    serve.add_argument(
        "--chain",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="PEM file of issuer certificates above --cert (repeatable)",
    )
    serve.set_defaults(handler=run_serve)


def parse_listen(value: str) -> tuple[str, int]:
    """Split HOST:PORT (or [IPv6]:PORT) into host and port, 0 <= port <= 65535."""
    host, separator, port_text = value.rpartition(":")
    if not separator or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"--listen {value!r} is not HOST:PORT, e.g. 127.0.0.1:3180")
    return host.strip("[]"), int(port_text)


def run_serve(args: argparse.Namespace) -> int:
    """Run `ledger tsa serve` and return the exit status."""
    from ledger.tsa.authority import DEFAULT_POLICY
    from ledger.tsa.errors import TsaKeyError
    from ledger.tsa.server import ServeOptions, serve

    try:
        host, port = parse_listen(args.listen)
    except ValueError as error:
        print(f"ledger tsa serve: {error}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print(
            f"ledger tsa serve: --workers {args.workers} must be at least 1",
            file=sys.stderr,
        )
        return 2
    if (args.key is None) != (args.cert is None):
        print("ledger tsa serve: give --key and --cert together", file=sys.stderr)
        return 2
    options = ServeOptions(
        data_dir=args.data,
        host=host,
        port=port,
        workers=args.workers,
        key_type=args.key_type,
        policy=args.policy or DEFAULT_POLICY,
        accepted_policies=tuple(args.accept_policy),
        key_path=args.key,
        certificate_path=args.cert,
        chain_paths=tuple(args.chain),
    )
    try:
        args.data.mkdir(parents=True, exist_ok=True)
        serve(options, announce=lambda line: print(line, flush=True))
    except TsaKeyError as error:
        print(f"ledger tsa serve: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(
            f"ledger tsa serve: cannot listen on {args.listen}: {error}",
            file=sys.stderr,
        )
        return 1
    return 0


def main() -> int:
    """Run `python -m ledger.tsa.cli ...` as if it were `ledger tsa ...`."""
    parser = argparse.ArgumentParser(prog="ledger")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args()
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
