"""Gateway benchmark: whole workflows per second, and evidence verification time.

1. Workflows per second with 16 concurrent clients against one gateway on
   127.0.0.1 (no witnesses, checkpoints every second): upload, sign, send,
   countersign and store the generated 3-page contract. Parties are enrolled
   before the clock starts, one pair per workflow, because a TOTP code is
   accepted once per 30-second period and a party therefore signs at most
   once per period. Peer: the same steps called in-process on the same
   gateway's workflow object, without HTTP.
2. Offline verification time of one evidence bundle (median of 7 runs).
   Peer: poppler's `pdfsig`, which checks only the PDF signatures of the
   same document, in a new process each run.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp

from gateway import sample_parties
from gateway.client import ApiCallError, GatewayClient
from gateway.contract_pdf import build_contract_pdf
from gateway.service import Gateway, GatewayOptions
from identity.errors import ConsentError

CLIENTS = 16
WORKFLOWS_PER_CLIENT = 3
PASSPHRASE = b"benchmark passphrase"


async def _enrol_pairs(client: GatewayClient, gateway: Gateway, count: int, base: int):
    pairs = []
    for n in range(count):
        parties = []
        for offset, name in ((0, "Ada Lovelace"), (1, "Grace Hopper")):
            details = sample_parties.person(base + 2 * n + offset, name)
            parties.append(
                await client.enrol(
                    gateway.operator_token,
                    "person",
                    details,
                    gateway.outbox.latest_code,
                    details["email"],
                )
            )
        pairs.append(tuple(parties))
    return pairs


# Retries of a signature whose TOTP code expired while the request waited;
# a person would type the next code. Counted and printed with the results.
retries = {"http": 0, "direct": 0}


async def _with_fresh_code(mode: str, attempt) -> None:
    """Run `attempt()` again, up to twice, when its TOTP code expired in the queue."""
    for remaining in (2, 1, 0):
        try:
            await attempt()
            return
        except (ApiCallError, ConsentError) as error:
            if remaining == 0 or "expired" not in str(error):
                raise
            retries[mode] += 1
            # A wrong code delays the party's next attempt by one second.
            await asyncio.sleep(1.5)


async def _http_workflow(client: GatewayClient, pdf: bytes, pair) -> None:
    first, second = pair
    contract = await client.upload(first, pdf, second)
    contract_id = contract["contract_id"]
    await _with_fresh_code("http", lambda: client.sign(first, contract_id))
    await client.send(first, contract_id, second.email)
    await _with_fresh_code("http", lambda: client.countersign(second, contract_id))
    await client.store(second, contract_id)


async def _direct_workflow(gateway: Gateway, pdf: bytes, pair) -> None:
    first, second = pair
    workflow = gateway.workflow
    contract = await workflow.upload(first.party_id, pdf, "", None, second.party_id)
    contract_id = contract["contract_id"]
    await _with_fresh_code(
        "direct",
        lambda: workflow.sign(first.party_id, contract_id, first.totp()),
    )
    await workflow.send(first.party_id, contract_id, second.email)
    await _with_fresh_code(
        "direct",
        lambda: workflow.countersign(second.party_id, contract_id, second.totp()),
    )
    await workflow.store(second.party_id, contract_id)


async def _run_clients(run_one, pairs) -> float:
    queues = [pairs[i::CLIENTS] for i in range(CLIENTS)]

    async def client_loop(queue) -> None:
        for pair in queue:
            await run_one(pair)

    started = time.perf_counter()
    await asyncio.gather(*(client_loop(queue) for queue in queues))
    return len(pairs) / (time.perf_counter() - started)


async def _measure_workflows(folder: Path) -> tuple[float, float, bytes, bytes]:
    pdf = build_contract_pdf()
    count = CLIENTS * WORKFLOWS_PER_CLIENT
    gateway = Gateway(GatewayOptions(folder, PASSPHRASE, publish_interval=1.0))
    await gateway.start()
    try:
        connector = aiohttp.TCPConnector(limit=CLIENTS)
        async with aiohttp.ClientSession(connector=connector) as session:
            client = GatewayClient(gateway.url, session)
            started = time.perf_counter()
            http_pairs = await _enrol_pairs(client, gateway, count, 10_000)
            direct_pairs = await _enrol_pairs(client, gateway, count, 20_000)
            print(
                f"enrolled {4 * count} parties in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            http_rate = await _run_clients(
                lambda pair: _http_workflow(client, pdf, pair), http_pairs
            )
            print(f"HTTP workflows: {http_rate:.2f}/s", flush=True)
            direct_rate = await _run_clients(
                lambda pair: _direct_workflow(gateway, pdf, pair), direct_pairs
            )
            first = http_pairs[0][0]
            listed = await client.call("GET", "/api/v1/contracts", first.api_token)
            contract_id = listed["contracts"][0]["contract_id"]
            evidence = await client.evidence(first, contract_id)
            signed = await client.document(first, contract_id)
    finally:
        await gateway.close()
    return http_rate, direct_rate, evidence, signed


def _median_seconds(action, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(report) -> None:
    from gateway.verify import verify_bundle

    with tempfile.TemporaryDirectory() as folder:
        http_rate, direct_rate, evidence, signed = asyncio.run(
            _measure_workflows(Path(folder) / "gateway")
        )
        print(
            f"signatures retried after an expired TOTP code: {retries['http']} "
            f"over HTTP, {retries['direct']} in-process",
            flush=True,
        )
        report.add(
            f"gateway workflows/s, {CLIENTS} clients over HTTP",
            http_rate,
            "workflows/s",
            peer="same workflow in-process, no HTTP",
            peer_value=direct_rate,
        )

        def verify() -> None:
            result = verify_bundle(evidence, source="bench")
            if not result.ok:
                raise RuntimeError("the benchmark's evidence bundle did not verify")

        pdf_path = Path(folder) / "signed.pdf"
        pdf_path.write_bytes(signed)

        def pdfsig() -> None:
            subprocess.run(["pdfsig", str(pdf_path)], capture_output=True, check=False)

        report.add(
            "evidence bundle verification, median of 7",
            _median_seconds(verify) * 1000,
            "ms",
            peer="pdfsig on the same PDF (signatures only)",
            peer_value=_median_seconds(pdfsig) * 1000,
        )
