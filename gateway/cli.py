"""The `ledger` command line: one entry point, subcommands registered by package.

Each module named in COMMAND_MODULES defines `register(subparsers)`, which
adds its subcommands with `set_defaults(handler=...)`. A handler takes the
parsed arguments and returns the exit status. Command modules import their
heavy dependencies (pyHanko, the LMDB store) inside the handlers, so that
`ledger --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "ledger.cli",
    "ledger.tsa.cli",
    "identity.cli",
    "signer.cli",
    "witnesses.cli",
    "gateway.commands",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every package's subcommands."""
    parser = argparse.ArgumentParser(
        prog="ledger",
        description="Append-only transparency log for electronic contracts.",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more detail (repeat for debug output)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            # A package without a command module contributes no subcommands.
            if error.name == name:
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `ledger` command and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING
    if args.verbose == 1:
        level = logging.INFO
    elif args.verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return int(handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
