"""RFC 9162 Merkle tree math and C2SP tlog-tiles coordinates; pure, no I/O.

Storage reaches this package through HashReader, which serves stored hashes
addressed by (level, index); see `ledger.merkle.stored`.
"""

from ledger.merkle.errors import MerkleError, ProofError, TileError, TreeRangeError
from ledger.merkle.hashing import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash
from ledger.merkle.proof import (
    EdgeCache,
    consistency_proof,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from ledger.merkle.stored import (
    HashReader,
    NodeId,
    fold_right,
    root_hash,
    root_hash_ids,
    stored_hashes_for_leaf,
    stored_hashes_for_range,
    subtree_ids,
)
from ledger.merkle.tile import (
    MAX_ENTRY_SIZE,
    MAX_TILE_LEVEL,
    TILE_HEIGHT,
    TILE_WIDTH,
    TileCoord,
    decode_entry_bundle,
    encode_entry_bundle,
    encode_tile_index,
    entries_path,
    entry_bundles_for_size,
    parse_tile_path,
    partial_tiles,
    stored_hash_from_tile,
    tile_for_stored_hash,
    tile_path,
    tile_width_at,
    tiles_for_size,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_ENTRY_SIZE",
    "MAX_TILE_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "EdgeCache",
    "HashReader",
    "MerkleError",
    "NodeId",
    "ProofError",
    "TileCoord",
    "TileError",
    "TreeRangeError",
    "consistency_proof",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "encode_tile_index",
    "entries_path",
    "entry_bundles_for_size",
    "fold_right",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "parse_tile_path",
    "partial_tiles",
    "root_hash",
    "root_hash_ids",
    "stored_hash_from_tile",
    "stored_hashes_for_leaf",
    "stored_hashes_for_range",
    "subtree_ids",
    "tile_for_stored_hash",
    "tile_path",
    "tile_width_at",
    "tiles_for_size",
    "verify_consistency",
    "verify_inclusion",
]
