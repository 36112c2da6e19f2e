"""`ledger identity init-ca` and `crl` through the `ledger` entry point."""

from __future__ import annotations

from cryptography import x509

from gateway.cli import main


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
