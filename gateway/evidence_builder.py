"""Assemble the evidence bundle of one contract from the log and the services.

The bundle's proofs all use one published checkpoint: the first whose tree
includes the contract's last entry, or a later one. Its time-stamp token
proves that every step happened before the checkpoint's time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.evidence import EvidenceBundle, LoggedEntry, Salt


class EvidenceBuildError(Exception):
    """The log cannot yet provide the evidence, e.g. no checkpoint covers an entry."""


@dataclass(frozen=True)
class TrustMaterial:
    """The public keys and certificates a bundle carries besides the log data."""

    policy: bytes
    tsa_chain_pem: bytes
    tsa_root_pem: bytes
    ca_root_pem: bytes


def stamped_note(store, tree_size: int, published_note: bytes) -> bytes:
    """Return the note bytes the checkpoint's time-stamp token covers.

    The publisher time-stamps the log-signed note before witnesses cosign it,
    so the stamped bytes are the signed checkpoint as first recorded.
    """
    with store.view() as view:
        for size, note in view.signed_checkpoints():
            if size == tree_size:
                return note
    return published_note


def build_bundle(
    store,
    *,
    contract_id: str,
    leaf_indexes: Sequence[int],
    document: bytes,
    trust: TrustMaterial,
    certificate_chains: dict[str, bytes],
    salts: Sequence[Salt] = (),
    entry_types: dict[int, str] | None = None,
) -> bytes:
    """Return the evidence bundle bytes of a contract.

    `leaf_indexes` lists every entry to include (the contract's steps and any
    party entries whose salts are disclosed); each must satisfy
    0 <= leaf_index < tree_size of the latest published checkpoint.
    """
    from ledger import merkle
    from ledger.checkpoint import Checkpoint
    from ledger.note import parse_note
    from ledger.tlog_proof import TlogProof

    published = store.latest_checkpoint()
    if published is None or published.time_stamp_token is None:
        raise EvidenceBuildError(
            "the log has not published a time-stamped checkpoint yet"
        )
    highest = max(leaf_indexes)
    if highest >= published.tree_size:
        raise EvidenceBuildError(
            f"the latest published checkpoint (tree_size {published.tree_size}) does "
            f"not yet include leaf_index {highest}; retry after the next checkpoint"
        )
    checkpoint = Checkpoint.parse(parse_note(published.note).text)

    entries = []
    for leaf_index in sorted(set(leaf_indexes)):
        proof = merkle.inclusion_proof(leaf_index, published.tree_size, store)
        tlog_proof = TlogProof(
            index=leaf_index, hashes=list(proof), checkpoint=published.note
        ).encode()
        entries.append(
            LoggedEntry(leaf_index, store.read_entry(leaf_index), tlog_proof)
        )

    bundle = EvidenceBundle(
        contract=contract_id,
        origin=checkpoint.origin,
        document=document,
        entries=entries,
        checkpoint_stamped=stamped_note(store, published.tree_size, published.note),
        time_stamp_token=published.time_stamp_token,
        tsa_chain_pem=trust.tsa_chain_pem,
        tsa_root_pem=trust.tsa_root_pem,
        policy=trust.policy,
        certificate_chains=dict(certificate_chains),
        ca_root_pem=trust.ca_root_pem,
        salts=list(salts),
    )
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return bundle.to_bytes(
        hashlib.sha256(document).hexdigest(), entry_types or {}, created
    )
