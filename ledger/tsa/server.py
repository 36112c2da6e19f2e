"""Serve the time-stamping authority over HTTP: `POST /tsa` (RFC 3161 section 3.4).

`add_tsa_routes` adds the endpoint to any aiohttp application, such as the
gateway's. `serve` runs a standalone TSA with one or more worker processes
that share the listening port through SO_REUSEPORT; each worker reserves
its own serial epoch, so serial numbers stay unique across them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import queue
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from ledger.tsa.authority import DEFAULT_POLICY, TimeStampAuthority
from ledger.tsa.client import QUERY_TYPE, REPLY_TYPE
from ledger.tsa.keys import (
    TsaCredentials,
    load_operator_credentials,
    load_or_create_credentials,
    passphrase_from_environment,
)
from ledger.tsa.request import MAX_REQUEST_SIZE
from ledger.tsa.serial import SerialNumbers

logger = logging.getLogger("ledger.tsa")

AUTHORITY_KEY = web.AppKey("tsa_authority", TimeStampAuthority)


def add_tsa_routes(app: web.Application, authority: TimeStampAuthority) -> None:
    """Add `POST /tsa` to `app`, served by `authority`."""
    app[AUTHORITY_KEY] = authority
    app.router.add_post("/tsa", handle_time_stamp_query)


async def handle_time_stamp_query(request: web.Request) -> web.Response:
    """Return the TimeStampResp for one application/timestamp-query body.

    Rejected requests still get HTTP 200 and a TimeStampResp with status
    rejection, as RFC 3161 clients expect. Only a body with another
    content type (415) or over MAX_REQUEST_SIZE (413) gets an HTTP error.
    """
    if request.content_type != QUERY_TYPE:
        raise web.HTTPUnsupportedMediaType(
            text=f"content type {request.content_type} is not {QUERY_TYPE}\n"
        )
    if request.content_length is not None and request.content_length > MAX_REQUEST_SIZE:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_REQUEST_SIZE, actual_size=request.content_length
        )
    body = await request.content.read(MAX_REQUEST_SIZE + 1)
    if len(body) > MAX_REQUEST_SIZE:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_REQUEST_SIZE, actual_size=len(body)
        )
    authority = request.app[AUTHORITY_KEY]
    return web.Response(body=authority.issue(body), content_type=REPLY_TYPE)


def make_app(authority: TimeStampAuthority) -> web.Application:
    """Build a standalone aiohttp application serving only `POST /tsa`."""
    app = web.Application(client_max_size=MAX_REQUEST_SIZE + 1)
    add_tsa_routes(app, authority)
    return app


@dataclass(frozen=True)
class ServeOptions:
    """Settings of one `ledger tsa serve` run.

    `key_path`, `certificate_path` and `chain_paths` name an operator's
    key, certificate and chain. Without them the TSA uses its own in
    `data_dir`, created on first start. 1 <= workers.
    """

    data_dir: Path
    host: str
    port: int
    workers: int = 1
    key_type: str = "ecdsa-p256"
    policy: str = DEFAULT_POLICY
    accepted_policies: Sequence[str] = ()
    key_path: Path | None = None
    certificate_path: Path | None = None
    chain_paths: Sequence[Path] = field(default_factory=tuple)


def load_serve_credentials(options: ServeOptions) -> TsaCredentials:
    """Load the credentials that `options` name, creating them on first start."""
    passphrase = passphrase_from_environment()
    if options.key_path is not None and options.certificate_path is not None:
        return load_operator_credentials(
            options.key_path, options.certificate_path, options.chain_paths, passphrase
        )
    return load_or_create_credentials(options.data_dir, passphrase, options.key_type)


async def run_worker(
    options: ServeOptions,
    credentials: TsaCredentials,
    reuse_port: bool,
    on_ready: Callable[[str, int], None],
) -> None:
    """Serve `POST /tsa` until SIGTERM or SIGINT arrives."""
    authority = TimeStampAuthority(
        credentials,
        SerialNumbers(options.data_dir),
        policy=options.policy,
        accepted_policies=options.accepted_policies,
    )
    runner = web.AppRunner(make_app(authority), access_log=None)
    await runner.setup()
    site = web.TCPSite(
        runner, options.host, options.port, reuse_port=reuse_port, backlog=1024
    )
    await site.start()
    host, port = runner.addresses[0][:2]
    logger.info(
        "TSA worker %d serving http://%s:%d/tsa with serial epoch %d",
        os.getpid(),
        host,
        port,
        authority.serial_epoch,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    on_ready(host, port)
    await stop.wait()
    await runner.cleanup()
    logger.info("TSA worker %d stopped", os.getpid())


def _worker_main(options: ServeOptions, ready: multiprocessing.Queue) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    credentials = load_serve_credentials(options)
    asyncio.run(
        run_worker(options, credentials, True, lambda host, port: ready.put(port))
    )


def serve(options: ServeOptions, announce: Callable[[str], None] = print) -> None:
    """Run the standalone TSA in the foreground until SIGTERM or SIGINT.

    Calls `announce` with "listening on http://HOST:PORT/tsa" once every
    worker accepts connections.
    """
    credentials = load_serve_credentials(options)
    if options.workers == 1:
        asyncio.run(
            run_worker(
                options,
                credentials,
                False,
                lambda host, port: announce(f"listening on http://{host}:{port}/tsa"),
            )
        )
        return

    # The parent keeps the port bound but never listens on it, so the
    # kernel sends it no connections and port 0 yields one port for all.
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((options.host, options.port))
    port = holder.getsockname()[1]
    worker_options = dataclasses.replace(options, port=port)

    context = multiprocessing.get_context("spawn")
    ready: multiprocessing.Queue = context.Queue()
    workers = [
        context.Process(target=_worker_main, args=(worker_options, ready), daemon=True)
        for _ in range(options.workers)
    ]
    for worker in workers:
        worker.start()
    stopping = False

    def stop(number: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        started = 0
        while started < len(workers):
            try:
                ready.get(timeout=1)
            except queue.Empty:
                if any(not worker.is_alive() for worker in workers):
                    raise OSError("a TSA worker exited during start") from None
                continue
            started += 1
        announce(f"listening on http://{options.host}:{port}/tsa")
        for worker in workers:
            worker.join()
            if not stopping and worker.exitcode != 0:
                logger.error(
                    "TSA worker %d exited with %s", worker.pid, worker.exitcode
                )
                stop(signal.SIGTERM, None)
    finally:
        stop(signal.SIGTERM, None)
        for worker in workers:
            worker.join()
        holder.close()
