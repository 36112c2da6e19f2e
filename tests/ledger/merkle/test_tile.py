"""C2SP tlog-tiles coordinates, paths and entry bundles."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    TileCoord,
    TileError,
    TreeRangeError,
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

from .conftest import build_reader, leaf_data
from .reference import ReferenceTree


def test_index_encoding_examples() -> None:
    assert encode_tile_index(1234067) == "x001/x234/067"
    assert encode_tile_index(0) == "000"
    assert encode_tile_index(5) == "005"
    assert encode_tile_index(1000) == "x001/000"
    assert encode_tile_index(999999) == "x999/999"


def test_paths() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(2, 0, 1) == "tile/2/000.p/1"
    assert entries_path(273, 112) == "tile/entries/273.p/112"
    assert TileCoord(1, 1, 17).path == "tile/1/001.p/17"
    assert TileCoord(0, 7, entries=True).path == "tile/entries/007"
    with pytest.raises(TreeRangeError):
        tile_path(64, 0)
    with pytest.raises(TreeRangeError):
        tile_path(0, 0, 257)
    with pytest.raises(TreeRangeError):
        entries_path(0, 0)


def test_spec_example_70000_leaves() -> None:
    # tlog-tiles: 273 full level 0 tiles, a partial level 0 tile of width
    # 112, one full level 1 tile, a partial level 1 tile of width 17 and a
    # partial level 2 tile of width 1.
    tiles = list(tiles_for_size(70_000))
    level0 = [t for t in tiles if t.level == 0]
    level1 = [t for t in tiles if t.level == 1]
    level2 = [t for t in tiles if t.level == 2]
    assert len(tiles) == 273 + 1 + 1 + 1 + 1
    assert [t for t in level0 if not t.is_partial] == [
        TileCoord(0, i) for i in range(273)
    ]
    assert [t for t in level0 if t.is_partial] == [TileCoord(0, 273, 112)]
    assert level1 == [TileCoord(1, 0), TileCoord(1, 1, 17)]
    assert level2 == [TileCoord(2, 0, 1)]
    assert partial_tiles(70_000) == [
        TileCoord(0, 273, 112),
        TileCoord(1, 1, 17),
        TileCoord(2, 0, 1),
    ]
    assert [t.path for t in partial_tiles(70_000)] == [
        "tile/0/273.p/112",
        "tile/1/001.p/17",
        "tile/2/000.p/1",
    ]
    bundles = list(entry_bundles_for_size(70_000))
    assert len(bundles) == 274
    assert bundles[-1] == TileCoord(0, 273, 112, entries=True)
    assert tile_width_at(0, 273, 70_000) == 112
    assert tile_width_at(1, 0, 70_000) == 256
    assert tile_width_at(2, 0, 70_000) == 1
    assert tile_width_at(3, 0, 70_000) == 0
    assert TileCoord(1, 1, 17).hash_ids()[0] == (8, 256)
    assert TileCoord(1, 1, 17).leaf_range() == (65536, 65536 + 17 * 256)


def test_spec_example_256_leaves() -> None:
    assert list(tiles_for_size(256)) == [TileCoord(0, 0), TileCoord(1, 0, 1)]
    assert list(tiles_for_size(0)) == []
    assert partial_tiles(0) == []


@pytest.mark.parametrize(
    "path, expected",
    [
        ("tile/0/000", TileCoord(0, 0)),
        ("/tile/0/x001/x234/067", TileCoord(0, 1234067)),
        ("tile/63/999.p/255", TileCoord(63, 999, 255)),
        ("tile/entries/x001/000.p/1", TileCoord(0, 1000, 1, entries=True)),
    ],
)
def test_parse_valid_paths(path: str, expected: TileCoord) -> None:
    assert parse_tile_path(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "",
        "tile",
        "tile/0",
        "tiles/0/000",
        "tile/00/000",
        "tile/64/000",
        "tile/-1/000",
        "tile/a/000",
        "tile/0/00",
        "tile/0/0000",
        "tile/0/x001",
        "tile/0/001/234",
        "tile/0/x000/001",
        "tile/0/x01/234",
        "tile/0/000.p",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/012",
        "tile/0/000.p/",
        "tile/0/000.q/5",
        "tile/0/\u0661\u0662\u0663",
        "tile/entries/",
        "tile/entries/12",
        "tile/0/000/",
    ],
)
def test_parse_rejects_bad_paths(path: str) -> None:
    with pytest.raises(TileError):
        parse_tile_path(path)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 63),
    st.integers(0, 10**15),
    st.integers(1, 256),
    st.booleans(),
)
def test_path_round_trip(level: int, index: int, width: int, entries: bool) -> None:
    coord = TileCoord(0 if entries else level, index, width, entries)
    assert parse_tile_path(coord.path) == coord


def test_stored_hash_from_tile() -> None:
    size = 256 * 3 + 40
    reader = build_reader(leaf_data(size))
    for level, index in [(0, 5), (3, 7), (7, 1), (8, 0), (8, 2), (9, 0), (4, 49)]:
        tile, _begin, _end = tile_for_stored_hash(level, index)
        width = tile_width_at(tile.level, tile.index, size)
        hashes = reader.read_hashes(TileCoord(tile.level, tile.index, width).hash_ids())
        data = b"".join(hashes)
        assert stored_hash_from_tile(data, level, index) == reader.hashes[level, index]
    with pytest.raises(TreeRangeError):
        stored_hash_from_tile(b"\x00" * 64, 3, 0)


def test_entry_bundle_round_trip() -> None:
    entries = [b"", b"a", b"x" * 65535]
    data = encode_entry_bundle(entries)
    assert data[:4] == b"\x00\x00\x00\x01"
    assert decode_entry_bundle(data) == entries
    with pytest.raises(TreeRangeError):
        encode_entry_bundle([b"x" * 65536])
    with pytest.raises(TreeRangeError):
        encode_entry_bundle([])
    with pytest.raises(TreeRangeError):
        encode_entry_bundle([b""] * 257)
    with pytest.raises(TileError):
        decode_entry_bundle(b"\x00")
    with pytest.raises(TileError):
        decode_entry_bundle(b"\x00\x05abc")


def test_tile_hashes_match_reference() -> None:
    size = 256 * 2 + 70
    leaves = leaf_data(size)
    reader = build_reader(leaves)
    reference = ReferenceTree(leaves)
    for tile in tiles_for_size(size):
        begin, end = tile.leaf_range()
        assert end <= size
        span = (end - begin) // tile.width
        hashes = reader.read_hashes(tile.hash_ids())
        for position, value in enumerate(hashes):
            first = begin + position * span
            assert value == reference.mth(first, first + span), (tile, position)
    assert [t.path for t in tiles_for_size(size)] == [
        "tile/0/000",
        "tile/0/001",
        "tile/0/002.p/70",
        "tile/1/000.p/2",
    ]
