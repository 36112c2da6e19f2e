"""Assemble an evidence bundle for a signed PDF from a log's or mirror's read API.

`ledger verify PDF --log URL` uses this when no bundle is at hand. Only the
public read API is needed (C2SP tlog-tiles under /log/ plus the JSON
inclusion proofs), so any mirror serves as well as the log itself:

1. fetch the latest checkpoint and its time-stamp token;
2. read every entry bundle of that tree and find the step whose logged
   document digest is the PDF's SHA-256, then every entry of its contract
   and the consent entries its signature steps name;
3. fetch an inclusion proof of each entry for the checkpoint's tree_size.

The trust anchors (the policy, the TSA root and the signing CA's root) must
come from the verifier, because a log could serve any keys it likes; the
result is an ordinary bundle that `gateway.verify` checks offline. Parties'
salts are private, so such a bundle discloses none.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
from typing import Any

import aiohttp


class EvidenceFetchError(Exception):
    """The evidence cannot be fetched: the log is unreachable or lacks the document."""


async def _get(session: aiohttp.ClientSession, url: str) -> bytes:
    try:
        async with session.get(url) as response:
            body = await response.read()
            if response.status != 200:
                raise EvidenceFetchError(
                    f"GET {url} returned HTTP {response.status}: "
                    f"{body[:200].decode(errors='replace')}"
                )
            return body
    except aiohttp.ClientError as error:
        raise EvidenceFetchError(f"GET {url} failed: {error}") from error


async def _latest(session: aiohttp.ClientSession, log: str) -> tuple[bytes, bytes]:
    # The token must belong to the same checkpoint, so read the checkpoint
    # before and after the token and retry if a new one was published.
    for _ in range(5):
        before = await _get(session, f"{log}/checkpoint")
        token = await _get(session, f"{log}/checkpoint.tsr")
        after = await _get(session, f"{log}/checkpoint")
        if before == after:
            return before, token
    raise EvidenceFetchError(
        "the log published new checkpoints faster than they could be read"
    )


def _stamped_note(cosigned: bytes) -> bytes:
    """Return the log-signed note inside a cosigned checkpoint note.

    The publisher time-stamps the note as the log signed it and witnesses
    append their cosignatures after it, so the stamped bytes are the text
    and the signature lines by the origin's key.
    """
    from ledger.checkpoint import Checkpoint
    from ledger.note import Note, parse_note

    note = parse_note(cosigned)
    origin = Checkpoint.parse(note.text).origin
    own = tuple(s for s in note.signatures if s.name == origin)
    return Note(note.text, own).to_bytes()


def _digests(entry: dict[str, Any]) -> list[bytes]:
    return [
        value
        for key in ("document_after", "document", "prepared", "uploaded")
        if isinstance(value := entry.get(key), bytes)
    ]


async def _fetch(
    pdf: bytes, base_url: str, tsa_root: bytes, ca_root: bytes, policy: bytes
) -> bytes:
    from ledger.checkpoint import Checkpoint
    from ledger.entry import EntryError, decode_entry
    from ledger.evidence import EvidenceBundle, LoggedEntry
    from ledger.merkle import (
        TILE_WIDTH,
        decode_entry_bundle,
        entries_path,
        leaf_hash,
    )
    from ledger.note import parse_note
    from ledger.tlog_proof import TlogProof

    log = base_url.rstrip("/") + "/log"
    digest = hashlib.sha256(pdf).digest()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        # 1. The checkpoint and its token.
        note, token = await _latest(session, log)
        checkpoint = Checkpoint.parse(parse_note(note).text)
        tree_size = checkpoint.tree_size

        # 2. The entries of the contract whose last document is this PDF.
        entries: dict[int, tuple[bytes, dict[str, Any]]] = {}
        consents: dict[bytes, tuple[int, bytes]] = {}
        contract = None
        for index in range((tree_size + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, tree_size - index * TILE_WIDTH)
            entry_bundle = await _get(session, f"{log}/{entries_path(index, width)}")
            for offset, raw in enumerate(decode_entry_bundle(entry_bundle)):
                try:
                    entry = decode_entry(raw)
                except EntryError:
                    continue
                leaf_index = index * TILE_WIDTH + offset
                if isinstance(entry.get("contract"), str):
                    entries[leaf_index] = (raw, entry)
                elif entry.get("type") == "consent":
                    consents[leaf_hash(raw)] = (leaf_index, raw)
                if digest in _digests(entry) and entry.get("type") == "store":
                    contract = entry["contract"]
        if contract is None:
            raise EvidenceFetchError(
                f"no stored contract in the log at {base_url} (tree_size "
                f"{tree_size}) has the document SHA-256 {digest.hex()}"
            )
        chosen = {
            i: raw for i, (raw, e) in entries.items() if e["contract"] == contract
        }
        # The consent entries that the signature steps name.
        for index in list(chosen):
            named = entries[index][1].get("consent")
            if isinstance(named, bytes) and named in consents:
                consent_index, consent_raw = consents[named]
                chosen[consent_index] = consent_raw

        # 3. An inclusion proof of each entry for the checkpoint's tree.
        logged = []
        for leaf_index, raw in sorted(chosen.items()):
            body = await _get(
                session,
                f"{log}/proof/inclusion?leaf_index={leaf_index}&tree_size={tree_size}",
            )
            proof = json.loads(body)
            hashes = [base64.b64decode(h) for h in proof["inclusion_proof"]]
            encoded = TlogProof(leaf_index, hashes, note).encode()
            logged.append(LoggedEntry(leaf_index, raw, encoded))

    bundle = EvidenceBundle(
        contract=contract,
        origin=checkpoint.origin,
        document=pdf,
        entries=logged,
        checkpoint_stamped=_stamped_note(note),
        time_stamp_token=token,
        tsa_chain_pem=b"",
        tsa_root_pem=tsa_root,
        policy=policy,
        ca_root_pem=ca_root,
    )
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return bundle.to_bytes(digest.hex(), {}, created)


def fetch_evidence(
    pdf: bytes,
    base_url: str,
    *,
    tsa_root: bytes | None,
    ca_root: bytes | None,
    policy: bytes | None,
) -> bytes:
    """Return an evidence bundle for `pdf` built from the read API at `base_url`.

    `base_url` serves /log/ (the gateway, `ledger serve` or a mirror). The
    policy, the TSA root and the CA root are required: a verifier must not
    take its trust anchors from the party it checks.
    """
    missing = [
        option
        for option, value in (
            ("--policy FILE", policy),
            ("--tsa-root FILE", tsa_root),
            ("--ca-root FILE", ca_root),
        )
        if not value
    ]
    if missing:
        raise EvidenceFetchError(
            "verifying a PDF against a log needs trust anchors of your own; "
            f"pass {', '.join(missing)}"
        )
    return asyncio.run(
        _fetch(pdf, base_url, tsa_root or b"", ca_root or b"", policy or b"")
    )
