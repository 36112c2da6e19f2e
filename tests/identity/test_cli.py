"""`ledger identity init-ca` and `crl` through the `ledger` entry point."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from cryptography import x509

from gateway.cli import main
from identity.ca import CaSettings, CertificateAuthority
from identity.proofing import DocumentCodeVerifier
from identity.service import IdentityService
from identity.store import IdentityStore
from ledger.entry import decode_entry
from ledger.log import init_log, open_log
from ledger.sequencer import Sequencer

from .conftest import BASE_URL, PASSPHRASE, TEST_SCRYPT_N, FrozenClock, Outbox
from .test_enrolment import enrol


def test_init_ca_and_crl(tmp_path, monkeypatch, capsys):
    common = ["--ca", str(tmp_path / "ca"), "--base-url", "http://127.0.0.1:8080"]

    monkeypatch.delenv("LEDGER_PASSPHRASE", raising=False)
    assert main(["identity", "init-ca", *common]) == 2
    assert "LEDGER_PASSPHRASE is not set" in capsys.readouterr().err
    assert not (tmp_path / "ca").exists()

    monkeypatch.setenv("LEDGER_PASSPHRASE", "secret")
    assert main(["identity", "init-ca", *common]) == 0
    assert "sha256:" in capsys.readouterr().out
    root = x509.load_pem_x509_certificate((tmp_path / "ca" / "root.pem").read_bytes())

    assert main(["identity", "init-ca", *common]) == 1
    assert "already exists" in capsys.readouterr().err

    output = tmp_path / "root.crl"
    assert main(["identity", "crl", *common, "--root", "--output", str(output)]) == 0
    crl = x509.load_der_x509_crl(output.read_bytes())
    assert crl.issuer == root.subject
    assert crl.is_signature_valid(root.public_key())

    monkeypatch.setenv("LEDGER_PASSPHRASE", "wrong")
    assert main(["identity", "crl", *common, "--output", str(output)]) == 1
    assert "LEDGER_PASSPHRASE" in capsys.readouterr().err


def test_revoke_and_erase_commands(tmp_path, monkeypatch, capsys):
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    outbox = Outbox()
    init_log(tmp_path / "log", "log.example/identity-cli", PASSPHRASE)
    ca = CertificateAuthority.create(
        tmp_path / "ca", PASSPHRASE, CaSettings(BASE_URL), clock=clock
    )

    async def enrol_one():
        log = open_log(tmp_path / "log")
        store = IdentityStore(tmp_path / "identity", PASSPHRASE, scrypt_n=TEST_SCRYPT_N)
        async with Sequencer(log.store) as sequencer:
            service = IdentityService(
                store, ca, sequencer, DocumentCodeVerifier(outbox, clock), clock=clock
            )
            party = await enrol(service, outbox)
        store.close()
        log.store.close()
        return party

    party = asyncio.run(enrol_one())
    ca.close()

    monkeypatch.setenv("LEDGER_PASSPHRASE", PASSPHRASE.decode())
    paths = [
        "--ca", str(tmp_path / "ca"), "--base-url", BASE_URL,
        "--log", str(tmp_path / "log"), "--identity", str(tmp_path / "identity"),
    ]  # fmt: skip
    assert (
        main(
            ["identity", "revoke", *paths, "--reason", "key_compromise", party.party_id]
        )
        == 0
    )
    assert "revoke done" in capsys.readouterr().out
    assert main(["identity", "erase", *paths, party.party_id]) == 0
    assert main(["identity", "erase", *paths, party.party_id]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["identity", "revoke", *paths, "0" * 32]) == 1

    log = open_log(tmp_path / "log")
    assert log.store.tree_size() == 2
    revoke = decode_entry(bytes(log.store.read_entry(1)))
    log.store.close()
    assert revoke["type"] == "revoke"
    assert revoke["reason"] == "key_compromise"
    assert revoke["prev"] == party.leaf_hash

    ca = CertificateAuthority.open(tmp_path / "ca", PASSPHRASE, CaSettings(BASE_URL))
    revocation = ca.revocation(party.certificate.serial_number)
    ca.close()
    assert revocation.reason == x509.ReasonFlags.key_compromise
    store = IdentityStore(tmp_path / "identity", PASSPHRASE)
    assert store.get(party.party_id) == {"kind": "person", "status": "erased"}
    store.close()
