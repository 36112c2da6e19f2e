"""Witness and mirror nodes as long-running services.

Each node binds its HTTP server, writes the URL it listens on to
`DIR/node.url` (so that a caller that asked for port 0 can find it), and
runs until SIGTERM or SIGINT, then stops its loops and closes its store.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Sequence
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


# The mirror waits `interval` seconds after a failed round, doubling the wait
# after each further failure up to this many seconds.
MAX_RETRY_DELAY = 15.0
# A failure that repeats the previous one is logged again, with its count,
# at most this often.
REPEAT_LOG_INTERVAL = 600.0

Announce = Callable[[str], None]


class NodeConfigError(Exception):
    """The node's options or data folder are inconsistent."""


class NodeUsageError(NodeConfigError):
    """An option value is invalid, e.g. a malformed --listen or --log."""


class ListenError(Exception):
    """The node cannot listen on its address, e.g. because the port is in use."""


def parse_listen(listen: str) -> tuple[str, int]:
    """Split HOST:PORT, or return ("unix:PATH", 0) for a Unix socket path.

    Raises NodeUsageError for anything else.
    """
    if listen.startswith(UNIX_PREFIX):
        if len(listen) == len(UNIX_PREFIX):
            raise NodeUsageError("invalid --listen unix: without a socket path")
        return listen, 0
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise NodeUsageError(f"invalid --listen {listen!r}; expected HOST:PORT")
    return host.strip("[]"), int(port)


def read_vkey_argument(value: str) -> str:
    """Return a vkey given inline or as the path of a file holding one."""
    path = Path(value)
    if "+" not in value or path.is_file():
        try:
            return path.read_text().strip()
        except OSError as error:
            raise NodeUsageError(
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
            raise NodeUsageError(f"invalid log vkey {value!r}: {error}") from error
    _check_store(data_dir / "witness.lmdb")
    state = WitnessState(data_dir / "witness.lmdb")
    return Witness(state, cosigner, logs)


def _check_store(path: Path) -> None:
    """Raise NodeConfigError when the LMDB data file in path is damaged."""
    from ledger.log import DamagedStoreError, check_lmdb_file

    try:
        check_lmdb_file(path)
    except DamagedStoreError as error:
        raise NodeConfigError(str(error)) from error


class RepeatedFailures:
    """Exponential retry delays and one log line per run of identical failures.

    After n consecutive failures the delay is min(interval * 2**(n - 1),
    max_delay). A failure with the same message as the previous one is only
    counted. The count is logged every `repeat_log_interval` seconds and when
    another message or `succeeded()` ends the run.
    """

    def __init__(
        self,
        interval: float,
        max_delay: float = MAX_RETRY_DELAY,
        repeat_log_interval: float = REPEAT_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.max_delay = max(max_delay, interval)
        self.repeat_log_interval = repeat_log_interval
        self.clock = clock
        self.failures = 0
        self._message = ""
        self._repeats = 0
        self._logged_at = 0.0

    def failed(self, message: str) -> float:
        """Record a failure, log it unless it repeats the last one, return the delay."""
        self.failures += 1
        now = self.clock()
        if message != self._message:
            self._log_repeats()
            self._message = message
            self._logged_at = now
            logger.warning("%s; retrying", message)
        else:
            self._repeats += 1
            if now - self._logged_at >= self.repeat_log_interval:
                self._log_repeats()
                self._logged_at = now
        return min(self.interval * 2 ** (self.failures - 1), self.max_delay)

    def succeeded(self) -> float:
        """Record a success, end the run of failures, and return the delay."""
        if self.failures:
            self._log_repeats()
            logger.info("succeeded after %d failed attempts", self.failures)
        self.failures = 0
        self._message = ""
        return self.interval

    def _log_repeats(self) -> None:
        if self._repeats:
            logger.warning("%s; repeated %d times", self._message, self._repeats)
            self._repeats = 0


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
) -> tuple[web.AppRunner, str]:
    """Serve app on host and port and return the runner and its URL.

    Raises ListenError when the address cannot be bound.
    """
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        if host.startswith(UNIX_PREFIX):
            path = host.removeprefix(UNIX_PREFIX)
            await web.UnixSite(runner, path).start()
            url = UNIX_PREFIX + path
        else:
            await web.TCPSite(runner, host, port).start()
            bound_port = runner.addresses[0][1]
            url = f"http://{host}:{bound_port}"
    except OSError as error:
        await runner.cleanup()
        address = host if host.startswith(UNIX_PREFIX) else f"{host}:{port}"
        raise ListenError(f"cannot listen on {address}: {error}") from error
    (data_dir / URL_FILE).write_text(url + "\n")
    logger.info("listening on %s", url)
    return runner, url


def _stop_event() -> asyncio.Event:
    """Return an event that SIGTERM or SIGINT sets."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def run_witness(
    witness: Witness,
    data_dir: Path,
    host: str,
    port: int,
    peers: Sequence[str] = (),
    gossip_interval: float = 5.0,
    announce: Announce | None = None,
) -> None:
    """Serve the witness until SIGTERM or SIGINT; gossip with peers if any.

    Calls announce with one line naming the witness and its URL once it
    listens. Raises ListenError when the address cannot be bound.
    """
    stop = _stop_event()
    try:
        runner, url = await _serve(build_app(witness), host, port, data_dir)
    except ListenError:
        witness.state.close()
        raise
    if announce is not None:
        origins = ", ".join(witness.logs)
        announce(
            f"witness {witness.cosigner.name} serving on {url} for {origins};"
            f" vkey {witness.cosigner.vkey}"
        )
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
        await stop.wait()
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
        raise NodeUsageError(
            f"no {MIRROR_LOG_VKEY_FILE} in {data_dir}; pass --log VKEY on the first start"
        )
    vkey = read_vkey_argument(log_vkey)
    try:
        note_format.Ed25519Verifier.from_vkey(vkey)
    except note_format.NoteError as error:
        raise NodeUsageError(f"invalid log vkey {log_vkey!r}: {error}") from error
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
    announce: Announce | None = None,
) -> None:
    """Follow the log and serve the copy until SIGTERM or SIGINT.

    Calls announce with one line naming the log, the source and the URL
    served, if any, once it runs. Raises ListenError when the address cannot
    be bound. After a failed round the mirror retries with exponential
    back-off up to MAX_RETRY_DELAY seconds.
    """
    from witnesses.mirror import ForkError, Mirror, MirrorError

    _check_store(data_dir / "mirror.lmdb")
    stop = _stop_event()
    mirror = Mirror(data_dir, source_url, log_vkey)
    runner = None
    url = None
    if host is not None:
        try:
            runner, url = await _serve(build_mirror_app(mirror), host, port, data_dir)
        except ListenError:
            mirror.close()
            raise
    if announce is not None:
        where = f" serving on {url}" if url is not None else " (not serving; no --listen)"
        announce(f"mirror of {mirror.origin} from {source_url}{where}")

    async def follow() -> None:
        failures = RepeatedFailures(interval)
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30)
        ) as session:
            while True:
                try:
                    await mirror.update(session)
                    delay = failures.succeeded()
                except ForkError as error:
                    # Already logged with the path of the evidence, so only
                    # the delay grows.
                    delay = failures.failed(f"mirror round found a fork: {error}")
                except MirrorError as error:
                    delay = failures.failed(f"mirror round failed: {error}")
                await asyncio.sleep(delay)

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
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        mirror.close()
        logger.info("mirror of %s stopped", mirror.origin)


__all__ = [
    "ListenError",
    "NodeConfigError",
    "NodeUsageError",
    "open_witness",
    "read_evidence",
    "run_mirror",
    "run_witness",
]
