"""RFC 3161 TSA throughput: tokens/s over HTTP on loopback versus `openssl ts -reply`.

For each key type (ECDSA P-256, then RSA 2048) the benchmark creates a TSA
data folder, starts `ledger tsa serve` with one worker process per CPU on
127.0.0.1, and sends TOKENS time-stamp queries from 64 concurrent
keep-alive HTTP/1.1 connections. The peer issues the same number of
tokens with `openssl ts -reply` from the same key and certificate, one
process per token as the openssl command line works, with one process
per CPU running at a time. Every reply is checked to be granted, a
sample is verified with verify_token, and all serial numbers must differ.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.report import Report
from ledger.tsa.authority import TimeStampAuthority
from ledger.tsa.keys import create_credentials, load_certificates, load_credentials
from ledger.tsa.request import build_request, new_nonce
from ledger.tsa.response import token_from_response
from ledger.tsa.serial import SerialNumbers
from ledger.tsa.verify import parse_token_info, verify_token

TOKENS = int(os.environ.get("BENCH_TSA_TOKENS", "2000"))
CLIENTS = 64
WARMUP = 256
SAMPLE_EVERY = 50


async def post_all(
    host: str, port: int, bodies: list[bytes], clients: int
) -> list[bytes]:
    """POST every body to /tsa over `clients` keep-alive connections; return the replies."""
    replies: list[bytes] = [b""] * len(bodies)
    next_index = iter(range(len(bodies)))

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for index in next_index:
                body = bodies[index]
                writer.write(
                    b"POST /tsa HTTP/1.1\r\nHost: %s:%d\r\n"
                    b"Content-Type: application/timestamp-query\r\n"
                    b"Content-Length: %d\r\n\r\n"
                    % (host.encode(), port, len(body))
                    + body
                )
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"TSA returned {head[:40]!r}")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                replies[index] = await reader.readexactly(length)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return replies


def start_server(
    data_dir: Path, workers: int, env: dict[str, str]
) -> tuple[subprocess.Popen, str, int]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ledger.tsa.cli",
            "tsa",
            "serve",
            "--data",
            str(data_dir),
            "--listen",
            "127.0.0.1:0",
            "--workers",
            str(workers),
        ],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"ledger tsa serve did not start: {line!r}")
    address = line.split()[-1].removeprefix("http://").removesuffix("/tsa")
    host, port = address.rsplit(":", 1)
    return process, host, int(port)


def openssl_config(data_dir: Path, number: int) -> Path:
    """Write an openssl `ts` configuration that signs with the TSA's key.

    openssl rewrites its serial file without a lock, so each concurrent
    openssl process gets its own file and range of serial numbers.
    """
    serial_path = data_dir / f"openssl-serial-{number}"
    serial_path.write_text(f"{number + 1:02x}00000000\n")
    path = data_dir / f"openssl-tsa-{number}.cnf"
    path.write_text(
        "[ tsa_config ]\n"
        f"serial = {serial_path}\n"
        f"signer_cert = {data_dir / 'tsa.pem'}\n"
        f"signer_key = {data_dir / 'tsa.key'}\n"
        "signer_digest = sha256\n"
        "default_policy = 1.3.6.1.4.1.99999.1\n"
        "digests = sha256, sha384, sha512\n"
        "accuracy = secs:1\n"
        "ess_cert_id_alg = sha256\n"
        "ess_cert_id_chain = no\n"
    )
    return path


def openssl_reply(config: Path, query: Path, reply: Path, env: dict[str, str]) -> None:
    subprocess.run(
        [
            "openssl",
            "ts",
            "-reply",
            "-config",
            str(config),
            "-section",
            "tsa_config",
            "-queryfile",
            str(query),
            "-out",
            str(reply),
            "-passin",
            "env:LEDGER_PASSPHRASE",
        ],
        check=True,
        capture_output=True,
        env=env,
    )


def measure_openssl(
    data_dir: Path, bodies: list[bytes], env: dict[str, str], workers: int
) -> float:
    """Issue one token per body with `openssl ts -reply`; return tokens/s."""
    configs = [openssl_config(data_dir, number) for number in range(workers)]
    queries = data_dir / "openssl-queries"
    queries.mkdir()
    paths = []
    for index, body in enumerate(bodies):
        path = queries / f"{index}.tsq"
        path.write_bytes(body)
        paths.append(path)
    start = time.perf_counter()

    def issue_share(number: int) -> None:
        for path in paths[number::workers]:
            openssl_reply(configs[number], path, path.with_suffix(".tsr"), env)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(issue_share, range(workers)))
    elapsed = time.perf_counter() - start
    replies = [path.with_suffix(".tsr").read_bytes() for path in paths]
    for reply in replies[::SAMPLE_EVERY]:
        token_from_response(reply)
    return len(bodies) / elapsed


def measure_in_process(data_dir: Path, passphrase: bytes, bodies: list[bytes]) -> float:
    """Return tokens issued per second of this process's CPU time, without HTTP.

    CPU time rather than wall time keeps the figure stable on a machine
    that other work shares.
    """
    credentials = load_credentials(data_dir, passphrase)
    authority = TimeStampAuthority(credentials, SerialNumbers(data_dir))
    start = time.process_time()
    for body in bodies:
        authority.issue(body)
    return len(bodies) / (time.process_time() - start)


def check_replies(
    replies: list[bytes], bodies: list[bytes], digests: list[bytes], root_path: Path
) -> None:
    """Check that every reply is granted, serials differ, and a sample verifies."""
    roots = load_certificates(root_path)
    serials = set()
    for index, reply in enumerate(replies):
        token = token_from_response(reply)
        serials.add(parse_token_info(token)["serial_number"].native)
        if index % SAMPLE_EVERY == 0:
            verify_token(token, digests[index], roots)
    if len(serials) != len(replies):
        raise RuntimeError(f"{len(replies) - len(serials)} serial numbers repeated")


def measure_key_type(report: Report, key_type: str, label: str) -> None:
    workers = os.cpu_count() or 1
    passphrase = secrets.token_hex(16)
    env = {**os.environ, "LEDGER_PASSPHRASE": passphrase}
    with tempfile.TemporaryDirectory(prefix="bench-tsa-") as folder:
        data_dir = Path(folder)
        create_credentials(data_dir, passphrase.encode(), key_type)
        digests = [
            hashlib.sha256(os.urandom(32)).digest() for _ in range(TOKENS + WARMUP)
        ]
        bodies = [
            build_request(digest, nonce=new_nonce(), cert_req=True)
            for digest in digests
        ]

        process, host, port = start_server(data_dir, workers, env)
        try:
            asyncio.run(post_all(host, port, bodies[:WARMUP], CLIENTS))
            server_processes = [
                psutil.Process(process.pid),
                *psutil.Process(process.pid).children(),
            ]
            server_before = [p.cpu_times() for p in server_processes]
            client_cpu = time.process_time()
            start = time.perf_counter()
            replies = asyncio.run(post_all(host, port, bodies[WARMUP:], CLIENTS))
            elapsed = time.perf_counter() - start
            client_cpu = time.process_time() - client_cpu
            server_after = [p.cpu_times() for p in server_processes]
            server_user = sum(
                a.user - b.user for a, b in zip(server_after, server_before)
            )
            server_system = sum(
                a.system - b.system for a, b in zip(server_after, server_before)
            )
            server_cpu = server_user + server_system
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        check_replies(
            replies, bodies[WARMUP:], digests[WARMUP:], data_dir / "tsa-root.pem"
        )
        print(
            f"  {label}: {TOKENS / elapsed:,.0f} tokens/s over HTTP; CPU per token: "
            f"server {server_cpu / TOKENS * 1e6:,.0f} us "
            f"({server_system / TOKENS * 1e6:,.0f} us in the kernel), "
            f"load generator {client_cpu / TOKENS * 1e6:,.0f} us",
            flush=True,
        )

        report.add(
            f"tsa server CPU per token over HTTP, {label}",
            server_cpu / TOKENS * 1e6,
            "us",
        )
        report.add(
            f"tsa issue() in-process, {label}, per CPU second",
            measure_in_process(data_dir, passphrase.encode(), bodies[WARMUP:]),
            "tokens/s",
        )
        if os.environ.get("BENCH_TSA_SKIP_PEER"):
            return
        peer_rate = measure_openssl(data_dir, bodies[WARMUP:], env, workers)
        report.add(
            f"tsa tokens over HTTP, {label}, {CLIENTS} clients, {workers} workers",
            TOKENS / elapsed,
            "tokens/s",
            peer=f"openssl ts -reply, same key, {workers} at a time",
            peer_value=round(peer_rate, 3),
        )


KEY_TYPES = {"ecdsa-p256": "ECDSA P-256", "rsa-2048": "RSA 2048"}


def run(report: Report) -> None:
    """Measure ECDSA P-256 and RSA 2048 token issuance over HTTP against openssl.

    BENCH_TSA_KEYS (comma-separated key types) and BENCH_TSA_TOKENS narrow
    a run while profiling; the defaults measure both key types.
    """
    selected = os.environ.get("BENCH_TSA_KEYS", ",".join(KEY_TYPES)).split(",")
    for key_type in selected:
        measure_key_type(report, key_type, KEY_TYPES[key_type])


if __name__ == "__main__":
    run(Report())
