"""`ledger identity ...`: create the CA, export CRLs, revoke and erase parties."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from identity.service import IdentityService

PASSPHRASE_VARIABLE = "LEDGER_PASSPHRASE"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `identity` command and its subcommands."""
    identity = subparsers.add_parser(
        "identity", help="certificate authority of the identity service"
    )
    commands = identity.add_subparsers(
        dest="identity_command", metavar="COMMAND", required=True
    )

    init = commands.add_parser(
        "init-ca",
        help="create a root and an issuing CA in DIR, keys encrypted under "
        "LEDGER_PASSPHRASE",
    )
    _add_common(init)
    init.add_argument(
        "--organisation",
        default="Contract Ledger",
        help="organizationName of the CA certificates (default Contract Ledger)",
    )
    init.add_argument(
        "--key-type",
        default="ec-p256",
        choices=("ec-p256", "rsa-3072"),
        help="CA key type (default ec-p256)",
    )
    init.set_defaults(handler=run_init_ca)

    crl = commands.add_parser("crl", help="write a freshly signed CRL in DER")
    _add_common(crl)
    crl.add_argument(
        "--root",
        action="store_true",
        help="the root's CRL, which covers the issuing CA (default: the issuing "
        "CA's CRL, which covers signers)",
    )
    crl.add_argument(
        "--output", required=True, type=Path, metavar="FILE", help="file to write"
    )
    crl.set_defaults(handler=run_crl)

    revoke = commands.add_parser(
        "revoke",
        help="revoke a party's certificate and append a revoke entry to the log",
    )
    _add_party_arguments(revoke)
    revoke.add_argument(
        "--reason",
        default="unspecified",
        choices=[
            "unspecified",
            "key_compromise",
            "affiliation_changed",
            "superseded",
            "cessation_of_operation",
        ],
        help="RFC 5280 revocation reason (default unspecified)",
    )
    revoke.set_defaults(handler=run_revoke)

    erase = commands.add_parser(
        "erase",
        help="on a person's request: revoke, then delete their personal data "
        "and salts, which leaves their log entries unlinkable",
    )
    _add_party_arguments(erase)
    erase.set_defaults(handler=run_erase)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ca", required=True, type=Path, metavar="DIR", help="folder of the CA"
    )
    parser.add_argument(
        "--base-url",
        required=True,
        metavar="URL",
        help="public URL prefix under which /ca/ is served, for example "
        "https://ledger.example; written into certificates and CRLs",
    )


def _add_party_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument(
        "--log", required=True, type=Path, metavar="DIR", help="data folder of the log"
    )
    parser.add_argument(
        "--identity",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder of the identity service's private LMDB store",
    )
    parser.add_argument("party_id", help="the party_id to act on")


def _passphrase(command: str) -> bytes | None:
    value = os.environ.get(PASSPHRASE_VARIABLE)
    if not value:
        print(
            f"ledger identity {command}: {PASSPHRASE_VARIABLE} is not set; "
            "export the passphrase that encrypts the CA keys",
            file=sys.stderr,
        )
        return None
    return value.encode()


def run_init_ca(args: argparse.Namespace) -> int:
    """Run `ledger identity init-ca` and return the exit status."""
    from cryptography.hazmat.primitives import hashes

    from identity.ca import CaSettings, CertificateAuthority
    from identity.errors import IdentityError

    passphrase = _passphrase("init-ca")
    if passphrase is None:
        return 2
    try:
        ca = CertificateAuthority.create(
            args.ca,
            passphrase,
            CaSettings(args.base_url.rstrip("/")),
            organisation=args.organisation,
            key_type=args.key_type,
        )
    except IdentityError as error:
        print(f"ledger identity init-ca: {error}", file=sys.stderr)
        return 1
    fingerprint = ca.root_certificate.fingerprint(hashes.SHA256()).hex()
    print(f"root certificate {args.ca / 'root.pem'} sha256:{fingerprint}")
    ca.close()
    return 0


def run_crl(args: argparse.Namespace) -> int:
    """Run `ledger identity crl` and return the exit status."""
    from identity.ca import CaSettings, CertificateAuthority
    from identity.errors import IdentityError

    passphrase = _passphrase("crl")
    if passphrase is None:
        return 2
    try:
        ca = CertificateAuthority.open(
            args.ca, passphrase, CaSettings(args.base_url.rstrip("/"))
        )
    except IdentityError as error:
        print(f"ledger identity crl: {error}", file=sys.stderr)
        return 1
    try:
        args.output.write_bytes(ca.root_crl() if args.root else ca.issuing_crl())
    except OSError as error:
        print(
            f"ledger identity crl: cannot write {args.output}: {error}", file=sys.stderr
        )
        return 1
    finally:
        ca.close()
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    """Run `ledger identity revoke` and return the exit status."""
    from cryptography import x509

    reason = x509.ReasonFlags[args.reason]
    return _run_on_party(
        args, "revoke", lambda service: service.revoke(args.party_id, reason)
    )


def run_erase(args: argparse.Namespace) -> int:
    """Run `ledger identity erase` and return the exit status."""
    return _run_on_party(args, "erase", lambda service: service.erase(args.party_id))


def _run_on_party(
    args: argparse.Namespace,
    command: str,
    action: Callable[[IdentityService], Awaitable[object]],
) -> int:
    """Open the CA, the identity store and the log, and run `action` on the service.

    The log may be open in a running gateway at the same time, because LMDB
    serialises write transactions across processes. The gateway's publisher
    reads the store's tree_size, so its next checkpoint covers the entry.
    NOTE: the gateway's lock does not reach this process, so a consent that
    the gateway appends for the same party at the same moment may carry the
    same `prev` as the revoke entry.
    """
    import asyncio

    from identity.ca import CaSettings, CertificateAuthority, utc_now
    from identity.errors import IdentityError
    from identity.proofing import DocumentCodeVerifier
    from identity.service import IdentityService
    from identity.store import IdentityStore
    from ledger.log import open_log
    from ledger.sequencer import Sequencer
    from ledger.store import StoreError

    passphrase = _passphrase(command)
    if passphrase is None:
        return 2

    async def reject_code_delivery(channel: str, address: str, code: str) -> None:
        raise RuntimeError("this command never begins an enrolment")

    async def run() -> None:
        with ExitStack() as resources:
            ca = CertificateAuthority.open(
                args.ca, passphrase, CaSettings(args.base_url.rstrip("/"))
            )
            resources.callback(ca.close)
            log = open_log(args.log)
            resources.callback(log.store.close)
            store = IdentityStore(args.identity, passphrase)
            resources.callback(store.close)
            async with Sequencer(log.store) as sequencer:
                verifier = DocumentCodeVerifier(reject_code_delivery, utc_now)
                await action(IdentityService(store, ca, sequencer, verifier))

    try:
        asyncio.run(run())
    except (IdentityError, StoreError) as error:
        print(f"ledger identity {command}: {error}", file=sys.stderr)
        return 1
    print(f"{command} done for party {args.party_id}")
    return 0
