"""Assemble and run the whole service in one process behind one gateway app.

`Gateway` opens, from one data folder, the log (store, sequencer and the
publisher that signs, time-stamps and cosigns checkpoints), the
time-stamping authority, the certificate authority, the identity service
and the contract workflow, and serves them all from one aiohttp
application on 127.0.0.1. Witnesses are separate nodes the publisher asks
over HTTP.

Data folder layout:

    log/          the log as `ledger init` creates it (log.lmdb/, log.key,
                  log.vkey), which `ledger serve --data DIR/log` serves alone
    tsa/          TSA key, certificate and trust anchor (tsa-root.pem)
    ca/           the signing CA
    identity/     the identity service's private database
    contracts/    the contract workflow's database and document replicas
    outbox/       proofing codes and sent contracts, one file each
    tokens.json   SHA-256 hashes of the API tokens
    enrolments.json  the leaf hash of each party's enrolment entry
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.serialization import Encoding

logger = logging.getLogger("gateway.service")

HOST = "127.0.0.1"


class GatewayListenError(SystemExit):
    """The gateway cannot bind its port, e.g. because another process uses it.

    Derived from SystemExit with a one-line message, so that `ledger gateway`,
    whose handler does not catch it, prints that line and exits with status 1
    instead of printing a traceback. In-process callers catch it by name.
    """

    def __init__(self, host: str, port: int, error: OSError) -> None:
        super().__init__(
            f"ledger gateway: cannot listen on {host}:{port}: {error.strerror or error};"
            " stop the process that uses the port or choose another --listen"
        )
        self.host = host
        self.port = port
        self.error = error


@dataclass
class GatewayOptions:
    """How to run one gateway: folders, passphrases, witnesses and timing."""

    data_dir: Path
    passphrase: bytes
    # The log key's passphrase, when the log folder belongs to another
    # operator identity than the gateway (the local cluster derives one per
    # node); defaults to `passphrase`.
    log_passphrase: bytes | None = None
    origin: str | None = None
    # The log's data folder; defaults to `data_dir/log`.
    log_dir: Path | None = None
    witnesses: list[tuple[str, str]] = field(default_factory=list)  # (url, vkey)
    quorum: int = 0
    publish_interval: float = 0.2
    port: int = 0


def _pem(certificates) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


class Gateway:
    """The running service; `start` opens everything, `close` stops it all."""

    def __init__(self, options: GatewayOptions) -> None:
        self.options = options
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._socket: socket.socket | None = None
        self._closers: list = []

    @property
    def log_dir(self) -> Path:
        return self.options.log_dir or self.options.data_dir / "log"

    def policy_text(self) -> bytes:
        """Return the trust policy (C2SP tlog-policy) of this log and its witnesses."""
        lines = [f"log {self.log_vkey} {self.url}/log/"]
        names = []
        for number, (url, vkey) in enumerate(self.options.witnesses, start=1):
            names.append(f"w{number}")
            lines.append(f"witness w{number} {vkey} {url}")
        if names and self.options.quorum > 0:
            lines.append(f"group witnesses {self.options.quorum} {' '.join(names)}")
            lines.append("quorum witnesses")
        else:
            lines.append("quorum none")
        return ("\n".join(lines) + "\n").encode()

    async def start(self) -> None:
        """Open every component and serve the app on 127.0.0.1."""
        from gateway.app import build_app
        from gateway.auth import OPERATOR, TokenStore
        from gateway.outbox import Outbox
        from gateway.workflow import EnrolmentIndex, ServiceWorkflow
        from identity.ca import CaSettings, CertificateAuthority, utc_now
        from identity.proofing import DocumentCodeVerifier
        from identity.service import IdentityService
        from identity.store import IdentityStore
        from ledger import merkle
        from ledger.log import init_log, open_log
        from ledger.publisher import Publisher
        from ledger.sequencer import Sequencer
        from ledger.store import LogConfig
        from ledger.tsa.authority import TimeStampAuthority
        from ledger.tsa.client import local_stamper
        from ledger.tsa.keys import load_or_create_credentials
        from ledger.witnessing import WitnessEndpoint, Witnessing

        options = self.options
        data = options.data_dir
        data.mkdir(parents=True, exist_ok=True)
        # Bind first, so that the URL (which goes into the CA's certificates)
        # is known before anything is opened and no other process takes the port.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((HOST, options.port))
        except OSError as error:
            listener.close()
            raise GatewayListenError(HOST, options.port, error) from error
        self._socket = listener
        port = listener.getsockname()[1]
        self.url = f"http://{HOST}:{port}"

        # 1. The log: created on first start, configured with the witnesses.
        log_passphrase = options.log_passphrase or options.passphrase
        if not (self.log_dir / "log.vkey").exists():
            init_log(
                self.log_dir,
                options.origin or f"ledger.localhost/{data.name}",
                log_passphrase,
            )
        log = open_log(self.log_dir, passphrase=log_passphrase)
        self.store = log.store
        self._closers.append(log.close)
        self.log_vkey = (self.log_dir / "log.vkey").read_text().strip()
        config = self.store.config()
        if options.witnesses:
            witnesses = tuple((url, vkey) for url, vkey in options.witnesses)
            self.store.write_config(LogConfig(config.origin, witnesses, options.quorum))
        self.origin = config.origin

        # 2. The TSA, which dates each checkpoint and each PAdES signature.
        tsa_dir = data / "tsa"
        credentials = load_or_create_credentials(tsa_dir, options.passphrase)
        self.tsa = TimeStampAuthority.open(tsa_dir, credentials)
        self.tsa_chain_pem = _pem([credentials.certificate, *credentials.chain])
        self.tsa_root_pem = _pem(credentials.chain[-1:])

        # 3. The publisher and the sequencer.
        cosign = None
        if options.witnesses:
            cosign = Witnessing(
                [WitnessEndpoint(url, vkey) for url, vkey in options.witnesses],
                options.quorum,
                lambda size1, size2: merkle.consistency_proof(size1, size2, self.store),
            )
            self._closers.append(cosign.close)
        self.publisher = Publisher(
            self.store,
            log.checkpoint_signer(),
            interval=options.publish_interval,
            time_stamp=local_stamper(self.tsa),
            cosign=cosign,
            quorum=options.quorum,
        )
        self.sequencer = Sequencer(self.store, publisher=self.publisher)

        # 4. CA and identity.
        ca_settings = CaSettings(base_url=self.url)
        ca_dir = data / "ca"
        if (ca_dir / "root.pem").exists():
            self.ca = CertificateAuthority.open(ca_dir, options.passphrase, ca_settings)
        else:
            self.ca = CertificateAuthority.create(
                ca_dir, options.passphrase, ca_settings
            )
        self._closers.append(self.ca.close)
        self.outbox = Outbox(data / "outbox" / "proofing")
        identity_store = IdentityStore(data / "identity", options.passphrase)
        self._closers.append(identity_store.close)
        self.identity = IdentityService(
            identity_store,
            self.ca,
            self.sequencer,
            DocumentCodeVerifier(self.outbox.send_code, utc_now),
        )

        # 5. The contract workflow.
        self.contracts = self._open_contracts()

        # 6. The app, with the operator token written once for the caller.
        self.tokens = TokenStore(data / "tokens.json")
        self.operator_token = self.tokens.issue(OPERATOR)
        self.workflow = ServiceWorkflow(
            self.identity,
            self.contracts,
            self.sequencer,
            EnrolmentIndex(data / "enrolments.json"),
            self,
        )
        app = build_app(
            tokens=self.tokens,
            workflow=self.workflow,
            log_source=self.store,
            tsa=self.tsa,
            ca=self.ca,
        )
        await self.sequencer.start()
        await self.publisher.start()
        # In-flight requests get two seconds to finish when the gateway stops.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.SockSite(self._runner, listener).start()
        logger.info("gateway serving %s origin=%s", self.url, self.origin)

    def _open_contracts(self):
        from signer.contracts import ContractIndex
        from signer.envelope import MasterKey
        from signer.notify import OutboxNotifier
        from signer.pades import AuthorityTimeStamper
        from signer.replicated import ReplicatedDocumentStore
        from signer.storage import FolderBlobStore
        from signer.validate import validation_context
        from signer.workflow import ContractService

        folder = self.options.data_dir / "contracts"
        folder.mkdir(parents=True, exist_ok=True)
        key_path = folder / "master.key"
        if key_path.exists():
            master_key = MasterKey.decrypt_from_storage(
                key_path.read_bytes(), self.options.passphrase
            )
        else:
            master_key = MasterKey.generate()
            key_path.write_bytes(
                master_key.encrypt_for_storage(self.options.passphrase)
            )
        index = ContractIndex(folder / "index.lmdb")
        self._closers.append(index.close)
        # Three folders stand in for three storage locations; an operator
        # points them at separate disks or S3 buckets.
        replicas = [FolderBlobStore(folder / f"replica-{n}") for n in (1, 2, 3)]
        credentials = self.tsa.credentials

        def lta_context():
            return validation_context(
                [self.ca.root_certificate, *credentials.chain[-1:]],
                other_certs=[self.ca.issuing_certificate, credentials.certificate],
                crls=[self.ca.issuing_crl(), self.ca.root_crl()],
            )

        return ContractService(
            appender=self.sequencer,
            identity=self.identity,
            index=index,
            drafts=FolderBlobStore(folder / "drafts"),
            documents=ReplicatedDocumentStore(replicas, [master_key]),
            notifier=OutboxNotifier(self.options.data_dir / "outbox" / "mail"),
            timestamper=AuthorityTimeStamper(self.tsa),
            validation_context=lta_context,
            sender="contracts@ledger.localhost",
        )

    def ca_root_pem(self) -> bytes:
        """Return the signing CA's root certificate (PEM)."""
        return self.ca.root_certificate.public_bytes(Encoding.PEM)

    async def close(self) -> None:
        """Stop serving, finish queued appends and close every store."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        # A start that failed part way leaves some components unopened.
        if hasattr(self, "sequencer"):
            await self.sequencer.close()
        if hasattr(self, "publisher"):
            await self.publisher.close()
        for close in reversed(self._closers):
            result = close()
            if hasattr(result, "__await__"):
                await result
        self._closers.clear()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        logger.info("gateway stopped")

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
