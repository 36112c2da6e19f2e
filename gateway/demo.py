"""`ledger demo`: the whole product on one contract, end to end.

1. Start the local cluster: the gateway (log, TSA, CA, identity, contract
   workflow, all APIs) in this process, three witnesses and one mirror as
   separate processes with their own keys, folders and ports on 127.0.0.1.
2. Enrol a person and an enterprise (with the person who signs for it).
3. Upload the contract, sign, send, countersign and store it over the API.
4. Fetch the signed PDF and the evidence bundle, and verify the bundle
   offline against the policy written next to it.
5. Check that the mirror serves the same inclusion proof as the log.

The input PDF is checked (readable, a PDF, opened by the password given,
signable) before anything starts, and the output folder is created only
after that. The folder must be new or empty, so that no file of an earlier
run is mixed with this run's. `--force` first deletes an earlier demo run
from it. It then contains contract.signed.pdf,
contract.evidence, log.vkey, witness.vkeys, policy.txt, tsa-root.pem,
ca-root.pem, report.html and log/, which `ledger serve --data DIR/log`
serves again after the demo has stopped.
"""

from __future__ import annotations

import asyncio
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from gateway import sample_parties
from gateway.client import ApiCallError, EnrolledParty, GatewayClient

WITNESSES = 3
QUORUM = 2
STEPS = 7

# The names a demo run writes to its output folder, plus the reports that
# `ledger verify --report` writes next to them. --force removes only these.
DEMO_OUTPUTS = frozenset(
    {
        "contract.pdf",
        "contract.signed.pdf",
        "contract.evidence",
        "log.vkey",
        "witness.vkeys",
        "policy.txt",
        "tsa-root.pem",
        "ca-root.pem",
        "report.html",
        "report.pdf",
        "log",
        "gateway",
        "mirror",
        *(f"witness-{n}" for n in range(1, WITNESSES + 1)),
    }
)


class DemoError(Exception):
    """The demo cannot run or a step failed; the message names the step and the cause."""


class DemoInputError(DemoError):
    """The input PDF cannot be used; nothing was started or created."""

    exit_status = 1


class OutputFolderError(DemoInputError):
    """The output folder is not new or empty; nothing was started or created."""

    exit_status = 2


@dataclass
class WorkflowOutcome:
    """The contract id, signed PDF and evidence bundle of one workflow run."""

    contract_id: str
    signed_pdf: bytes
    evidence: bytes
    first_signer: EnrolledParty
    countersigner: EnrolledParty
    store_leaf_index: int


Progress = Callable[[str], None]


def _print_progress() -> Progress:
    counter = iter(range(1, 100))

    def progress(message: str) -> None:
        print(f"[{next(counter)}/{STEPS}] {message}", flush=True)

    return progress


async def run_workflow(
    client: GatewayClient,
    operator_token: str,
    code_for: Callable[[str], str],
    pdf: bytes,
    *,
    password: str | None = None,
    progress: Progress = lambda message: None,
) -> WorkflowOutcome:
    """Enrol two parties and take a contract from upload to store over the API.

    Raises ApiCallError when the gateway rejects a step, for example a PDF
    that cannot be signed (HTTP 422 with the reason).
    """
    serial = secrets.randbelow(10**8)
    person_details = sample_parties.person(serial, "Ada Lovelace")
    signatory_details = sample_parties.person(serial + 1, "Charles Babbage")
    person = await client.enrol(
        operator_token, "person", person_details, code_for, person_details["email"]
    )
    signatory = await client.enrol(
        operator_token,
        "person",
        signatory_details,
        code_for,
        signatory_details["email"],
    )
    enterprise = await client.enrol(
        operator_token,
        "enterprise",
        sample_parties.enterprise(serial, "Northwind Hosting Ltd", signatory.party_id),
        code_for,
        # The enterprise's proofing code and contracts go to its signatory.
        signatory_details["email"],
    )
    progress(
        f"enrolled person {person.party_id} and enterprise {enterprise.party_id} "
        f"(signatory {signatory.party_id})"
    )

    contract = await client.upload(
        person, pdf, enterprise, title="Services Agreement", password=password
    )
    contract_id = contract["contract_id"]
    await client.sign(person, contract_id)
    await client.send(person, contract_id, enterprise.email)
    await client.countersign(enterprise, contract_id)
    stored = await client.store(enterprise, contract_id)
    steps = ", ".join(f"{s['step']} #{s['leaf_index']}" for s in stored["steps"])
    progress(f"contract {contract_id}: {steps}")

    signed_pdf = await client.document(person, contract_id)
    evidence = await client.evidence(person, contract_id, disclose=True)
    progress(
        f"fetched the signed PDF ({len(signed_pdf):,} bytes) and the evidence "
        f"bundle ({len(evidence):,} bytes)"
    )
    return WorkflowOutcome(
        contract_id,
        signed_pdf,
        evidence,
        person,
        enterprise,
        stored["steps"][-1]["leaf_index"],
    )


async def _mirror_matches(
    session: aiohttp.ClientSession, log_url: str, mirror_url: str, leaf_index: int
) -> str:
    """Wait for the mirror to catch up, then compare one inclusion proof with the log's."""
    async with session.get(f"{log_url}/log/checkpoint") as response:
        checkpoint = await response.text()
    tree_size = int(checkpoint.split("\n")[1])
    path = f"/log/proof/inclusion?leaf_index={leaf_index}&tree_size={tree_size}"
    deadline = time.monotonic() + 30
    while True:
        async with session.get(mirror_url + path) as response:
            if response.status == 200:
                from_mirror = await response.json()
                break
        if time.monotonic() > deadline:
            raise DemoError(
                f"the mirror did not reach tree_size {tree_size} within 30 seconds"
            )
        await asyncio.sleep(0.2)
    async with session.get(log_url + path) as response:
        from_log = await response.json()
    if from_mirror != from_log:
        raise DemoError(
            f"the mirror's inclusion proof of leaf_index {leaf_index} differs "
            "from the log's"
        )
    return f"tree_size {tree_size}"


async def _demo(pdf: bytes, out: Path, password: str | None, passphrase: bytes) -> int:
    from gateway.nodes import NodeGroup, NodeStartError
    from gateway.report import write_report
    from gateway.service import Gateway, GatewayOptions
    from gateway.verify import TrustAnchor, verify_bundle
    from ledger.log import init_log

    progress = _print_progress()
    log_dir = out / "log"
    # The gateway process owns the log, so the log key is under its own
    # LEDGER_PASSPHRASE; each witness and the mirror get a derived one.
    log_passphrase = passphrase
    if not (log_dir / "log.vkey").exists():
        init_log(log_dir, "ledger.localhost/demo", log_passphrase)
    log_vkey = (log_dir / "log.vkey").read_text().strip()

    nodes = NodeGroup(passphrase)
    gateway: Gateway | None = None
    try:
        # 1. The cluster: witnesses first, because the log needs their keys.
        try:
            witnesses = await asyncio.to_thread(
                nodes.start_witnesses,
                [out / f"witness-{n}" for n in range(1, WITNESSES + 1)],
                log_vkey,
            )
        except NodeStartError as error:
            raise DemoError(f"a witness did not start: {error}") from error
        gateway = Gateway(
            GatewayOptions(
                out / "gateway",
                passphrase,
                log_dir=log_dir,
                log_passphrase=log_passphrase,
                witnesses=[(w.url, w.vkey) for w in witnesses],
                quorum=QUORUM,
                publish_interval=0.25,
            )
        )
        await gateway.start()
        try:
            mirror = await asyncio.to_thread(
                nodes.start_mirror, out / "mirror", gateway.url, log_vkey
            )
        except NodeStartError as error:
            raise DemoError(f"the mirror did not start: {error}") from error
        progress(
            f"cluster up: gateway {gateway.url}, witnesses "
            + ", ".join(w.url for w in witnesses)
            + f", mirror {mirror.url} (quorum {QUORUM} of {WITNESSES})"
        )

        # 2-4. The workflow over the API.
        async with aiohttp.ClientSession() as session:
            client = GatewayClient(gateway.url, session)
            try:
                outcome = await run_workflow(
                    client,
                    gateway.operator_token,
                    gateway.outbox.latest_code,
                    pdf,
                    password=password,
                    progress=progress,
                )
            except ApiCallError as error:
                if error.status in (413, 422):
                    raise DemoError(
                        f"the PDF cannot be signed: {error.reason}"
                    ) from error
                raise DemoError(str(error)) from error

            # 5. The outputs next to each other.
            policy = gateway.policy_text()
            (out / "contract.signed.pdf").write_bytes(outcome.signed_pdf)
            (out / "contract.evidence").write_bytes(outcome.evidence)
            shutil.copyfile(log_dir / "log.vkey", out / "log.vkey")
            (out / "witness.vkeys").write_text(
                "".join(w.vkey + "\n" for w in witnesses)
            )
            (out / "policy.txt").write_bytes(policy)
            (out / "tsa-root.pem").write_bytes(gateway.tsa_root_pem)
            (out / "ca-root.pem").write_bytes(gateway.ca_root_pem())

            # 6. Offline verification against the trust anchors written above.
            result = await asyncio.to_thread(
                verify_bundle,
                outcome.evidence,
                source=str(out / "contract.evidence"),
                policy_text=policy,
                policy_source=str(out / "policy.txt"),
                tsa_root=TrustAnchor(gateway.tsa_root_pem, str(out / "tsa-root.pem")),
                ca_root=TrustAnchor(gateway.ca_root_pem(), str(out / "ca-root.pem")),
                password=password,
            )
            write_report(result, out / "report.html")
            failed = [c for c in result.checks if not c.passed]
            progress(
                f"verified the evidence offline: {len(result.checks) - len(failed)} of "
                f"{len(result.checks)} checks passed"
            )
            for check in failed:
                print(
                    f"      check {check.number} {check.title}: {check.reason}",
                    flush=True,
                )

            # 7. The mirror serves the same proofs.
            mirrored = await _mirror_matches(
                session, gateway.url, mirror.url, outcome.store_leaf_index
            )
            progress(f"the mirror serves the same inclusion proof at {mirrored}")
    finally:
        if gateway is not None:
            await gateway.close()
        await asyncio.to_thread(nodes.stop)
    progress("cluster stopped")

    print()
    print("Contract ledger demo")
    print(f"  contract id        {outcome.contract_id}")
    print(f"  signed PDF         {out / 'contract.signed.pdf'}")
    print(f"  evidence bundle    {out / 'contract.evidence'}")
    print(f"  report for a court {out / 'report.html'}")
    print(f"  log key            {out / 'log.vkey'}")
    print(f"  witness keys       {out / 'witness.vkeys'}")
    print(f"  trust policy       {out / 'policy.txt'}")
    print(f"  trust anchors      {out / 'tsa-root.pem'}, {out / 'ca-root.pem'}")
    print(
        f"  log data           {log_dir}  (serve it again: ledger serve --data {log_dir} --read-only)"
    )
    print(f"  verify again       {verify_command(out, password)}")
    print(f"  result             {result.verdict}")
    return 0 if result.ok else 1


def verify_command(out: Path, password: str | None) -> str:
    """Return the shell command that verifies the demo's evidence in `out` again.

    It names the three trust anchors the demo wrote next to the bundle, and
    the PDF's password when one was needed to open it.
    """
    words = [
        "ledger",
        "verify",
        str(out / "contract.evidence"),
        "--policy",
        str(out / "policy.txt"),
        "--tsa-root",
        str(out / "tsa-root.pem"),
        "--ca-root",
        str(out / "ca-root.pem"),
    ]
    if password is not None:
        words += ["--password", password]
    return shlex.join(words)


def check_output_folder(out: Path, *, force: bool = False) -> None:
    """Raise OutputFolderError unless `out` is absent or an empty folder.

    With `force`, a folder that contains only what an earlier demo run
    wrote (DEMO_OUTPUTS) passes too.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputFolderError(
            f"--out {out} is a file, not a folder; name a new or empty folder"
        )
    names = sorted(path.name for path in out.iterdir())
    if not names:
        return
    if not force:
        raise OutputFolderError(
            f"the output folder {out} is not empty (it contains {_listing(names)}); "
            "name a new or empty folder with --out, so that no file of an earlier "
            "run is mixed with this run's, or pass --force to replace an earlier "
            "demo run"
        )
    foreign = [name for name in names if name not in DEMO_OUTPUTS]
    if foreign:
        raise OutputFolderError(
            f"--force replaces only an earlier demo run, but the output folder "
            f"{out} also contains {_listing(foreign)}; name a new or empty folder "
            "with --out"
        )


def _listing(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def remove_earlier_run(out: Path) -> None:
    """Delete the files and folders of DEMO_OUTPUTS that `out` contains."""
    for name in sorted(DEMO_OUTPUTS):
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def check_input_pdf(pdf: bytes, name: str, password: str | None) -> None:
    """Raise DemoInputError unless `pdf` is a PDF that `password` opens and that can be signed.

    Runs the same checks as the gateway's upload, so that a PDF that cannot
    be signed is rejected before the cluster starts.
    """
    from signer.errors import PasswordError, SignerError
    from signer.prepare import prepare_pdf

    try:
        prepare_pdf(pdf, password)
    except PasswordError as error:
        if password is None:
            raise DemoInputError(
                f"{name} is encrypted and the empty user password does not "
                "open it; pass its user or owner password with --password"
            ) from error
        raise DemoInputError(
            f"{name} is encrypted and the password given with --password does "
            "not open it; pass its user or owner password"
        ) from error
    except SignerError as error:
        raise DemoInputError(f"the PDF cannot be signed: {name}: {error}") from error


def run_demo(
    pdf_path: Path | None,
    out: Path,
    password: str | None = None,
    *,
    force: bool = False,
) -> int:
    """Run the demo on `pdf_path` (or the generated contract) into `out`; return the exit status.

    `out` must be absent or empty, or with `force` contain only an earlier
    demo run, which is then deleted. Before anything is started, created or
    deleted, raises OutputFolderError when `out` does not qualify, and
    DemoInputError when the PDF cannot be read, opened with `password` or
    signed. Raises DemoError when a later step fails.
    """
    from gateway.contract_pdf import build_contract_pdf
    from ledger.keys import PassphraseMissingError, passphrase_from_environment

    try:
        passphrase = passphrase_from_environment()
    except PassphraseMissingError as error:
        print(f"ledger demo: {error}", file=sys.stderr)
        return 2
    out = out.resolve()
    check_output_folder(out, force=force)
    if pdf_path is None:
        pdf = build_contract_pdf()
        name = "the generated sample contract"
    else:
        try:
            pdf = pdf_path.read_bytes()
        except OSError as error:
            raise DemoInputError(f"cannot read {pdf_path}: {error.strerror}") from error
        name = str(pdf_path)
    check_input_pdf(pdf, name, password)
    if force and out.exists():
        remove_earlier_run(out)
    out.mkdir(parents=True, exist_ok=True)
    if pdf_path is None:
        pdf_path = out / "contract.pdf"
        pdf_path.write_bytes(pdf)
        print(f"generated the sample contract {pdf_path}", flush=True)
    return asyncio.run(_demo(pdf, out, password, passphrase))
