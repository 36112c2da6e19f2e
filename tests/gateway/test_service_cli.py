"""`ledger gateway` start-up: a busy port is one line and status 1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from gateway.service import Gateway, GatewayListenError, GatewayOptions

LEDGER = [sys.executable, "-m", "gateway.cli"]


@pytest.fixture
def busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield busy.getsockname()[1]


def test_gateway_busy_port_one_line(tmp_path, busy_port):
    env = dict(os.environ, LEDGER_PASSPHRASE="gateway passphrase")
    result = subprocess.run(
        LEDGER + ["gateway", "--data", str(tmp_path / "g"), "--listen", f"127.0.0.1:{busy_port}"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert f"ledger gateway: cannot listen on 127.0.0.1:{busy_port}" in stderr
    assert not (tmp_path / "g" / "log").exists()


async def test_gateway_start_raises_listen_error(tmp_path, busy_port):
    gateway = Gateway(GatewayOptions(tmp_path / "g", b"gateway passphrase", port=busy_port))
    with pytest.raises(GatewayListenError) as raised:
        await gateway.start()
    assert raised.value.port == busy_port
    assert isinstance(raised.value.error, OSError)
    await gateway.close()
