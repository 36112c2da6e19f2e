"""Witness and mirror nodes as long-running services.

Each node binds its HTTP server, writes the URL it listens on to
`DIR/node.url` (so that a caller that asked for port 0 can find it), and
runs until SIGTERM or SIGINT, then stops its loops and closes its store.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

from ledger import note as note_format
from witnesses.evidence import ForkEvidence, read_evidence, write_evidence
from witnesses.gossip import Gossip
from witnesses.keys import load_or_create_key
from witnesses.state import WitnessState
from witnesses.witness import LogKey, Witness, origin_hash, parse_log_vkey
from witnesses.witness_http import build_app

logger = logging.getLogger("witnesses.nodes")

URL_FILE = "node.url"
# A Unix socket reaches a node in another network namespace without any IP
# traffic; the node's URL is then `unix:<path>`.
UNIX_PREFIX = "unix:"
WITNESS_KEY_FILE = "witness.key"
WITNESS_VKEY_FILE = "witness.vkey"
MIRROR_LOG_VKEY_FILE = "log.vkey"


class NodeConfigError(Exception):
    """The node's options or data folder are inconsistent."""


def parse_listen(listen: str) -> tuple[str, int]:
    """Split HOST:PORT, or return ("unix:PATH", 0) for a Unix socket path.

    Raises NodeConfigError for anything else.
    """
    if listen.startswith(UNIX_PREFIX):
        if len(listen) == len(UNIX_PREFIX):
            raise NodeConfigError("invalid --listen unix: without a socket path")
        return listen, 0
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise NodeConfigError(f"invalid --listen {listen!r}; expected HOST:PORT")
    return host.strip("[]"), int(port)


def read_vkey_argument(value: str) -> str:
    """Return a vkey given inline or as the path of a file holding one."""
    path = Path(value)
    if "+" not in value or path.is_file():
        try:
            return path.read_text().strip()
        except OSError as error:
            raise NodeConfigError(
                f"{value!r} is neither a vkey nor a readable vkey file"
            ) from error
    return value.strip()


def open_witness(data_dir: Path, log_vkeys: Sequence[str], name: str | None) -> Witness:
    """Open or create the witness in data_dir for the given logs.

    On first start creates the encrypted key `witness.key` and writes the
    cosignature vkey to `witness.vkey`; the key name then stays fixed.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    key = load_or_create_key(data_dir / WITNESS_KEY_FILE)
    vkey_path = data_dir / WITNESS_VKEY_FILE
    if vkey_path.exists():
        stored = note_format.CosignatureVerifier.from_vkey(
            vkey_path.read_text().strip()
        )
        if name is not None and name != stored.name:
            raise NodeConfigError(
                f"{data_dir} contains witness {stored.name!r}, not {name!r}; drop "
                "--name or use another data folder"
            )
        name = stored.name
    elif name is None:
        name = f"witness.localhost/{data_dir.resolve().name}"
    cosigner = note_format.CosignatureSigner(name, key)
    if vkey_path.exists():
        if vkey_path.read_text().strip() != cosigner.vkey:
            raise NodeConfigError(
                f"{vkey_path} does not match the key in {WITNESS_KEY_FILE}"
            )
    else:
        vkey_path.write_text(cosigner.vkey + "\n")
    logs: list[LogKey] = []
    for value in log_vkeys:
        try:
            logs.append(parse_log_vkey(read_vkey_argument(value)))
        except note_format.NoteError as error:
            raise NodeConfigError(f"invalid log vkey {value!r}: {error}") from error
    state = WitnessState(data_dir / "witness.lmdb")
    return Witness(state, cosigner, logs)


class _WitnessView:
    """The witness's cosigned history of one log, for gossip."""

    def __init__(self, state: WitnessState, origin: str) -> None:
        self.state = state
        self.origin = origin

    def root_at(self, tree_size: int) -> tuple[bytes, bytes] | None:
        stored = self.state.cosigned(self.origin, tree_size)
        return None if stored is None else (stored.root_hash, stored.note)


async def _serve(
    app: web.Application, host: str, port: int, data_dir: Path
) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    if host.startswith(UNIX_PREFIX):
        path = host.removeprefix(UNIX_PREFIX)
        await web.UnixSite(runner, path).start()
        url = UNIX_PREFIX + path
    else:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        url = f"http://{host}:{bound_port}"
    (data_dir / URL_FILE).write_text(url + "\n")
    logger.info("listening on %s", url)
    return runner


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def run_witness(
    witness: Witness,
    data_dir: Path,
    host: str,
    port: int,
    peers: Sequence[str] = (),
    gossip_interval: float = 5.0,
) -> None:
    """Serve the witness until SIGTERM or SIGINT; gossip with peers if any."""
    runner = await _serve(build_app(witness), host, port, data_dir)
    tasks = []
    for origin, verifiers in witness.logs.items():
        if not peers:
            break

        def report(evidence: ForkEvidence, origin: str = origin) -> None:
            witness.state.record_evidence(
                origin,
                evidence.reason,
                evidence.conflicting_note,
                evidence.verified_note,
            )

        gossip = Gossip(
            origin,
            verifiers,
            _WitnessView(witness.state, origin),
            peers,
            report,
            gossip_interval,
        )
        tasks.append(asyncio.create_task(gossip.run_forever()))
    logger.info(
        "witness %s started for %d logs", witness.cosigner.name, len(witness.logs)
    )
    try:
        await _wait_for_stop()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        witness.state.close()
        logger.info("witness %s stopped", witness.cosigner.name)


def mirror_log_vkey(data_dir: Path, log_vkey: str | None) -> str:
    """Return the mirrored log's vkey, stored in DIR/log.vkey on first start."""
    path = data_dir / MIRROR_LOG_VKEY_FILE
    if path.exists():
        stored = path.read_text().strip()
        if log_vkey is not None and read_vkey_argument(log_vkey) != stored:
            raise NodeConfigError(
                f"{data_dir} mirrors the log with vkey {stored}; use another "
                "data folder for another log"
            )
        return stored
    if log_vkey is None:
        raise NodeConfigError(
            f"no {MIRROR_LOG_VKEY_FILE} in {data_dir}; pass --log VKEY on the first start"
        )
    vkey = read_vkey_argument(log_vkey)
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(vkey + "\n")
    return vkey


def build_mirror_app(mirror) -> web.Application:
    """Build the mirror's application: the tlog-tiles read API and gossip paths."""
    from ledger.http import add_read_routes

    app = web.Application()
    add_read_routes(app, mirror.store)
    prefix = f"/{origin_hash(mirror.origin)}"

    async def latest(request: web.Request) -> web.Response:
        verified = await asyncio.to_thread(mirror.verified_checkpoint)
        if verified is None:
            raise web.HTTPNotFound(text="no checkpoint verified yet\n")
        return web.Response(
            body=verified.note,
            content_type="text/plain",
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

    async def forks(request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(mirror.forks))

    app.router.add_get(prefix + "/checkpoint", latest)
    app.router.add_get(prefix + "/evidence", forks)
    return app


async def run_mirror(
    data_dir: Path,
    source_url: str,
    log_vkey: str,
    host: str | None,
    port: int,
    interval: float = 1.0,
    peers: Sequence[str] = (),
) -> None:
    """Follow the log and serve the copy until SIGTERM or SIGINT."""
    from witnesses.mirror import ForkError, Mirror, MirrorError

    mirror = Mirror(data_dir, source_url, log_vkey)
    runner = None
    if host is not None:
        runner = await _serve(build_mirror_app(mirror), host, port, data_dir)

    async def follow() -> None:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30)
        ) as session:
            while True:
                try:
                    await mirror.update(session)
                except ForkError:
                    pass  # already logged with the path of the evidence
                except MirrorError as error:
                    logger.warning("mirror round failed, retrying: %s", error)
                await asyncio.sleep(interval)

    tasks = [asyncio.create_task(follow())]
    if peers:
        gossip = Gossip(
            mirror.origin,
            [mirror.verifier],
            mirror,
            peers,
            lambda evidence: write_evidence(mirror.forks_dir, evidence),
            max(interval, 1.0),
        )
        tasks.append(asyncio.create_task(gossip.run_forever()))
    logger.info("mirror of %s from %s started", mirror.origin, source_url)
    try:
        await _wait_for_stop()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        mirror.close()
        logger.info("mirror of %s stopped", mirror.origin)


__all__ = [
    "NodeConfigError",
    "open_witness",
    "read_evidence",
    "run_mirror",
    "run_witness",
]
