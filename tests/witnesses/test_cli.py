"""The witness and mirror commands reject bad options with one line and a status."""

from __future__ import annotations

from gateway.cli import main


def test_witness_needs_passphrase(tmp_path, monkeypatch, reference_log, capsys):
    monkeypatch.delenv("LEDGER_PASSPHRASE", raising=False)
    status = main(
        [
            "witness",
            "serve",
            "--data",
            str(tmp_path / "w"),
            "--listen",
            "127.0.0.1:0",
            "--log",
            reference_log.vkey,
        ]
    )
    assert status == 2
    assert "LEDGER_PASSPHRASE" in capsys.readouterr().err
    assert not (tmp_path / "w" / "witness.key").exists()


def test_witness_rejects_bad_listen(tmp_path, passphrase, reference_log, capsys):
    status = main(
        [
            "witness",
            "serve",
            "--data",
            str(tmp_path / "w"),
            "--listen",
            "nowhere",
            "--log",
            reference_log.vkey,
        ]
    )
    assert status == 1
    assert "--listen" in capsys.readouterr().err


def test_witness_rejects_bad_vkey(tmp_path, passphrase, capsys):
    status = main(
        [
            "witness",
            "serve",
            "--data",
            str(tmp_path / "w"),
            "--listen",
            "127.0.0.1:0",
            "--log",
            "example.test/log+00000000+AAAA",
        ]
    )
    assert status == 1
    assert "invalid log vkey" in capsys.readouterr().err


def test_witness_name_fixed_after_first_start(
    tmp_path, passphrase, reference_log, capsys
):
    from witnesses.nodes import open_witness

    open_witness(
        tmp_path / "w", [reference_log.vkey], "witness.test/first"
    ).state.close()
    status = main(
        [
            "witness",
            "serve",
            "--data",
            str(tmp_path / "w"),
            "--listen",
            "127.0.0.1:0",
            "--log",
            reference_log.vkey,
            "--name",
            "witness.test/second",
        ]
    )
    assert status == 1
    assert "witness.test/first" in capsys.readouterr().err


def test_mirror_needs_log_vkey_first(tmp_path, capsys):
    status = main(
        ["mirror", "--source", "http://127.0.0.1:9", "--data", str(tmp_path / "m")]
    )
    assert status == 1
    assert "--log VKEY" in capsys.readouterr().err
