"""The gateway's subcommands: `ledger verify` and `ledger demo`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Exit status of `ledger verify` for each verdict.
EXIT_STATUS = {"VALID": 0, "NOT VALID": 1, "NOT CHECKED": 3}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `verify` and `demo` to the `ledger` command."""
    verify = subparsers.add_parser(
        "verify",
        help="verify an evidence bundle (or a PDF against a log) offline",
        description=(
            "Check an evidence bundle offline: the log's checkpoint signature, "
            "the witnesses' cosignatures, the time-stamp token, every inclusion "
            "proof, the contract's hash chain, the document digest and the PDF "
            "signatures. Trust comes from three anchors: the policy (--policy), "
            "the TSA root (--tsa-root) and the signing CA root (--ca-root). "
            "Each one not given is taken from the bundle itself and the report "
            "warns that it is self-asserted by the service that built the "
            "bundle; pass all three, obtained independently, to rely on the "
            "result."
        ),
        epilog=(
            "Exit status: 0 when every check passed (VALID); 1 when a check "
            "failed (NOT VALID); 2 when a file cannot be read or an option is "
            "wrong; 3 when no check failed but one could not be made (NOT "
            "CHECKED), such as the signatures of an encrypted PDF without "
            "--password."
        ),
    )
    verify.add_argument(
        "evidence",
        type=Path,
        metavar="BUNDLE|PDF",
        help="an evidence bundle, or a signed PDF with --log",
    )
    verify.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="trust policy (C2SP tlog-policy) to verify against; "
        "default: the bundle's own, which is self-asserted",
    )
    verify.add_argument(
        "--log",
        metavar="URL",
        help="base URL of a log or mirror to fetch the evidence "
        "of a PDF from (the URL that serves /log/)",
    )
    verify.add_argument(
        "--tsa-root",
        type=Path,
        metavar="FILE",
        help="TSA root certificate (PEM) that the checkpoint's time-stamp "
        "token must verify to; default: the bundle's own, which is "
        "self-asserted (required with --log)",
    )
    verify.add_argument(
        "--ca-root",
        type=Path,
        metavar="FILE",
        help="signing CA root certificate (PEM) that every signer certificate "
        "must chain to; default: the bundle's own, which is self-asserted "
        "(required with --log)",
    )
    verify.add_argument(
        "--password",
        metavar="PW",
        help="password of an encrypted PDF in the bundle; without it the "
        "signatures of such a PDF are NOT CHECKED (exit status 3)",
    )
    verify.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="also write the report for a court to FILE (.pdf or .html)",
    )
    verify.set_defaults(handler=run_verify)

    demo = subparsers.add_parser(
        "demo",
        help="run the whole workflow on a contract and verify its evidence",
        description=(
            "Start a local cluster (log, TSA, three witnesses, one mirror), "
            "enrol a person and an enterprise, upload, sign, send, countersign "
            "and store a contract, then build and verify its evidence bundle. "
            "The PDF is checked (a PDF, opened by --password, signable) before "
            "the cluster starts, and DIR is created only then."
        ),
        epilog=(
            "Exit status: 0 when the evidence verified; 1 when the PDF cannot "
            "be signed or a step or check failed; 2 when LEDGER_PASSPHRASE is "
            "not set or DIR is not new or empty (nor, with --force, an "
            "earlier demo run)."
        ),
    )
    demo.add_argument(
        "pdf",
        type=Path,
        nargs="?",
        metavar="PDF",
        help="contract to sign (default: a generated sample contract)",
    )
    demo.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="new or empty folder for the signed PDF, the evidence and the log "
        "data; a folder that contains files is rejected unless --force",
    )
    demo.add_argument(
        "--force",
        action="store_true",
        help="replace an earlier demo run in DIR: delete the files and folders "
        "a demo run writes (and report.html, report.pdf) before starting; a "
        "DIR that contains anything else is still rejected",
    )
    demo.add_argument(
        "--password",
        metavar="PW",
        help="user or owner password of an encrypted PDF",
    )
    demo.set_defaults(handler=run_demo)

    serve = subparsers.add_parser(
        "gateway",
        help="run the whole service: log, TSA, CA, identity, contracts and APIs",
        description=(
            "Serve the write API (/api/v1), the log read API (/log/), the TSA "
            "(/tsa) and the CA (/ca/) from one process. The first start creates "
            "the log, the TSA and the CA under DIR, encrypted under "
            "LEDGER_PASSPHRASE. The operator token, which enrols parties, is "
            "printed once at each start."
        ),
    )
    serve.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="DIR",
        help="data folder of the gateway (the log goes to DIR/log)",
    )
    serve.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="address to listen on (default 127.0.0.1:8080; port 0 picks one)",
    )
    serve.add_argument("--origin", help="log origin on first start")
    serve.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="URL=VKEY",
        help="a witness's submission URL and cosignature vkey (repeatable)",
    )
    serve.add_argument(
        "--quorum",
        type=int,
        default=0,
        help="cosignatures a checkpoint needs (default 0)",
    )
    serve.set_defaults(handler=run_gateway)


def run_verify(args: argparse.Namespace) -> int:
    """Verify a bundle or a PDF, print the report and return the exit status.

    0 when valid, 1 when a check failed, 2 for an unreadable file and 3
    when no check failed but one could not be made.
    """
    from gateway.report import render_text, write_report
    from gateway.verify import TrustAnchor, verify_bundle
    from ledger.evidence import MAX_ANCHOR_SIZE, MAX_BUNDLE_SIZE, read_bounded

    if args.report and args.report.suffix.lower() not in (".html", ".htm", ".pdf"):
        # Checked first, so that a long verification is not run for nothing.
        print(
            f"ledger verify: report file {args.report} must end in .html or .pdf",
            file=sys.stderr,
        )
        return 2
    try:
        data = read_bounded(args.evidence, MAX_BUNDLE_SIZE)
        policy_text = (
            read_bounded(args.policy, MAX_ANCHOR_SIZE) if args.policy else None
        )
        tsa_root = (
            TrustAnchor(
                read_bounded(args.tsa_root, MAX_ANCHOR_SIZE), str(args.tsa_root)
            )
            if args.tsa_root
            else None
        )
        ca_root = (
            TrustAnchor(read_bounded(args.ca_root, MAX_ANCHOR_SIZE), str(args.ca_root))
            if args.ca_root
            else None
        )
    except OSError as error:
        print(
            f"ledger verify: cannot read {error.filename}: {error.strerror}",
            file=sys.stderr,
        )
        return 2
    if data.startswith(b"%PDF-"):
        if not args.log:
            print(
                "ledger verify: a PDF needs --log URL to fetch its evidence from; "
                "or pass its evidence bundle",
                file=sys.stderr,
            )
            return 2
        from gateway.fetch import EvidenceFetchError, fetch_evidence

        try:
            data = fetch_evidence(
                data,
                args.log,
                tsa_root=tsa_root.pem if tsa_root else None,
                ca_root=ca_root.pem if ca_root else None,
                policy=policy_text,
            )
        except (EvidenceFetchError, OSError) as error:
            print(f"ledger verify: {error}", file=sys.stderr)
            return 1
    result = verify_bundle(
        data,
        source=str(args.evidence),
        policy_text=policy_text,
        policy_source=str(args.policy) if args.policy else None,
        tsa_root=tsa_root,
        ca_root=ca_root,
        password=args.password,
    )
    sys.stdout.write(render_text(result))
    if args.report:
        try:
            write_report(result, args.report)
        except (OSError, ValueError) as error:
            print(f"ledger verify: cannot write the report: {error}", file=sys.stderr)
            return 2
        print(f"report written to {args.report}")
    return EXIT_STATUS[result.verdict]


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo and return its exit status."""
    from gateway.demo import DemoError, DemoInputError
    from gateway.demo import run_demo as demo

    try:
        return demo(args.pdf, args.out, password=args.password, force=args.force)
    except DemoInputError as error:
        print(f"ledger demo: {error}", file=sys.stderr)
        return error.exit_status
    except DemoError as error:
        print(f"ledger demo: {error}", file=sys.stderr)
        return 1


def run_gateway(args: argparse.Namespace) -> int:
    """Run the gateway until SIGINT or SIGTERM; return the exit status."""
    import asyncio
    import signal

    from gateway.service import Gateway, GatewayOptions
    from ledger.keys import PassphraseMissingError, passphrase_from_environment

    try:
        passphrase = passphrase_from_environment()
    except PassphraseMissingError as error:
        print(f"ledger gateway: {error}", file=sys.stderr)
        return 2
    host, _, port = args.listen.rpartition(":")
    if host != "127.0.0.1" and host != "localhost" or not port.isdigit():
        print(
            f"ledger gateway: invalid --listen {args.listen!r}; expected "
            "127.0.0.1:PORT (the gateway serves loopback only)",
            file=sys.stderr,
        )
        return 2
    witnesses = []
    for value in args.witness:
        url, separator, vkey = value.partition("=")
        if not separator or not url or not vkey:
            print(
                f"ledger gateway: invalid --witness {value!r}; expected URL=VKEY",
                file=sys.stderr,
            )
            return 2
        witnesses.append((url, vkey))
    if not 0 <= args.quorum <= len(witnesses):
        print(
            f"ledger gateway: --quorum {args.quorum} must be between 0 and the "
            f"number of witnesses, {len(witnesses)}",
            file=sys.stderr,
        )
        return 2
    options = GatewayOptions(
        args.data.resolve(),
        passphrase,
        origin=args.origin,
        witnesses=witnesses,
        quorum=args.quorum,
        port=int(port),
    )

    async def serve() -> None:
        gateway = Gateway(options)
        await gateway.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)
        print(f"gateway serving {gateway.url}", flush=True)
        print(f"operator token: {gateway.operator_token}", flush=True)
        try:
            await stop.wait()
        finally:
            await gateway.close()

    asyncio.run(serve())
    return 0
