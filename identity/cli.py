"""`ledger identity ...`: create the certificate authority, export its CRLs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PASSPHRASE_VARIABLE = "LEDGER_PASSPHRASE"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `identity` command and its `init-ca` and `crl` subcommands."""
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
