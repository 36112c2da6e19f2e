"""C2SP tlog-tiles coordinates: tile paths, partial tiles and entry bundles.

A tile at tile level L and index N holds up to 256 consecutive stored
hashes at tree level 8 * L, starting at stored index N * 256. A full tile is
256 hashes (8,192 bytes). The rightmost tile of each level is partial while
the tree grows: it has floor(tree_size / 256**L) mod 256 hashes and the path
suffix `.p/<W>`. Entry bundles follow the level 0 tiles, one entry per leaf,
each prefixed by its length as a big-endian uint16.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ledger.merkle.errors import TileError, TreeRangeError
from ledger.merkle.hashing import HASH_SIZE, node_hash
from ledger.merkle.stored import NodeId

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_TILE_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF


@dataclass(frozen=True, slots=True)
class TileCoord:
    """A tile (or, with entries=True, an entry bundle) and its width.

    `level` is the tile level (0 for entry bundles), `index` the tile index
    within that level, and 1 <= width <= 256, where 256 is a full tile.
    """

    level: int
    index: int
    width: int = TILE_WIDTH
    entries: bool = False

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    @property
    def path(self) -> str:
        """The tile's path below the log prefix, such as `tile/0/x001/234`."""
        if self.entries:
            return entries_path(self.index, self.width)
        return tile_path(self.level, self.index, self.width)

    def hash_ids(self) -> list[NodeId]:
        """List the stored hashes this tile holds, in tile order.

        For an entry bundle, these are the leaf hashes of its entries.
        """
        level = TILE_HEIGHT * self.level
        first = self.index * TILE_WIDTH
        return [(level, first + i) for i in range(self.width)]

    def leaf_range(self) -> tuple[int, int]:
        """Return the leaves [begin, end) that the tile's hashes cover."""
        span = 1 << (TILE_HEIGHT * self.level)
        begin = self.index * TILE_WIDTH * span
        return begin, begin + self.width * span


def encode_tile_index(index: int) -> str:
    """Encode a tile index as 3-digit path elements, all but the last x-prefixed.

    For example 1234067 becomes `x001/x234/067` and 5 becomes `005`.
    Requires 0 <= index.
    """
    if index < 0:
        raise TreeRangeError(f"tile index {index} is negative")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    groups.reverse()
    return "/".join(groups)


def _width_suffix(width: int) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise TreeRangeError(f"tile width {width} is out of range 1..256")
    if width == TILE_WIDTH:
        return ""
    return f".p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """Return the path `tile/<L>/<N>[.p/<W>]` of a hash tile.

    Requires 0 <= level <= 63, 0 <= index and 1 <= width <= 256.
    """
    if not 0 <= level <= MAX_TILE_LEVEL:
        raise TreeRangeError(f"tile level {level} is out of range 0..63")
    return f"tile/{level}/{encode_tile_index(index)}{_width_suffix(width)}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """Return the path `tile/entries/<N>[.p/<W>]` of an entry bundle.

    Requires 0 <= index and 1 <= width <= 256.
    """
    return f"tile/entries/{encode_tile_index(index)}{_width_suffix(width)}"


def _parse_decimal(text: str, label: str, path: str) -> int:
    # Decimal ASCII with no leading zeros; str.isdigit would accept other
    # Unicode digits.
    if not text or not all("0" <= c <= "9" for c in text):
        raise TileError(f"invalid {label} {text!r} in tile path {path!r}")
    if len(text) > 1 and text[0] == "0":
        raise TileError(f"{label} {text!r} in tile path {path!r} has a leading zero")
    return int(text)


def _parse_index(elements: list[str], path: str) -> int:
    if not elements:
        raise TileError(f"tile path {path!r} has no tile index")
    index = 0
    last = len(elements) - 1
    for position, element in enumerate(elements):
        digits = element
        if position < last:
            if not element.startswith("x"):
                raise TileError(
                    f"tile index element {element!r} in {path!r} must start"
                    " with 'x' because it is not the last element"
                )
            digits = element[1:]
        if len(digits) != 3 or not all("0" <= c <= "9" for c in digits):
            raise TileError(
                f"tile index element {element!r} in {path!r} must be three"
                " decimal digits"
            )
        index = index * 1000 + int(digits)
    if len(elements) > 1 and elements[0] == "x000":
        raise TileError(
            f"tile index in {path!r} starts with 'x000'; the encoding has no"
            " leading zero elements"
        )
    return index


def parse_tile_path(path: str) -> TileCoord:
    """Parse `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`.

    A leading slash is allowed. Raises TileError naming the bad element
    for any path that is not the canonical encoding of a tile.
    """
    parts = path.removeprefix("/").split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise TileError(
            f"tile path {path!r} must look like tile/<L>/<N>[.p/<W>]"
            " or tile/entries/<N>[.p/<W>]"
        )
    width = TILE_WIDTH
    index_parts = parts[2:]
    if len(index_parts) >= 2 and index_parts[-2].endswith(".p"):
        width = _parse_decimal(index_parts[-1], "tile width", path)
        if not 1 <= width < TILE_WIDTH:
            raise TileError(
                f"partial tile width {width} in {path!r} is out of range 1..255"
            )
        index_parts = index_parts[:-1]
        index_parts[-1] = index_parts[-1].removesuffix(".p")
    index = _parse_index(index_parts, path)
    if parts[1] == "entries":
        return TileCoord(0, index, width, entries=True)
    level = _parse_decimal(parts[1], "tile level", path)
    if level > MAX_TILE_LEVEL:
        raise TileError(f"tile level {level} in {path!r} exceeds 63")
    return TileCoord(level, index, width)


def tiles_for_size(tree_size: int) -> Iterator[TileCoord]:
    """Yield every hash tile of a tree of tree_size leaves, level by level.

    Full tiles come first at each level, then that level's partial tile if
    the level has one. Requires 0 <= tree_size.
    """
    if tree_size < 0:
        raise TreeRangeError(f"tree_size {tree_size} is negative")
    level = 0
    count = tree_size
    while count:
        for index in range(count // TILE_WIDTH):
            yield TileCoord(level, index)
        if count % TILE_WIDTH:
            yield TileCoord(level, count // TILE_WIDTH, count % TILE_WIDTH)
        level += 1
        count //= TILE_WIDTH


def partial_tiles(tree_size: int) -> list[TileCoord]:
    """List the partial hash tiles of a tree of tree_size leaves, lowest first.

    These are the tiles a log serves for this tree_size besides full ones.
    Requires 0 <= tree_size.
    """
    if tree_size < 0:
        raise TreeRangeError(f"tree_size {tree_size} is negative")
    result = []
    level = 0
    count = tree_size
    while count:
        if count % TILE_WIDTH:
            result.append(TileCoord(level, count // TILE_WIDTH, count % TILE_WIDTH))
        level += 1
        count //= TILE_WIDTH
    return result


def tile_width_at(level: int, index: int, tree_size: int) -> int:
    """Return the width of tile (level, index) in a tree of tree_size, 0 if absent.

    Requires 0 <= level, 0 <= index and 0 <= tree_size.
    """
    count = tree_size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, count - index * TILE_WIDTH))


def entry_bundles_for_size(tree_size: int) -> Iterator[TileCoord]:
    """Yield every entry bundle of a tree of tree_size leaves, in order.

    Requires 0 <= tree_size.
    """
    for tile in tiles_for_size(tree_size):
        if tile.level > 0:
            return
        yield TileCoord(0, tile.index, tile.width, entries=True)


def tile_for_stored_hash(level: int, index: int) -> tuple[TileCoord, int, int]:
    """Find the full tile from which stored hash (level, index) is computed.

    Returns (tile, begin, end): the stored hash is the Merkle Tree Hash of the
    tile's hashes [begin, end), which is a single hash when level is a
    multiple of 8. Requires 0 <= level and 0 <= index.
    """
    if level < 0 or index < 0:
        raise TreeRangeError(f"stored hash ({level}, {index}) is out of range")
    tile_level = level // TILE_HEIGHT
    depth = level - tile_level * TILE_HEIGHT
    first = index << depth
    tile = TileCoord(tile_level, first // TILE_WIDTH)
    begin = first % TILE_WIDTH
    return tile, begin, begin + (1 << depth)


def stored_hash_from_tile(tile_data: bytes, level: int, index: int) -> bytes:
    """Compute stored hash (level, index) from the bytes of the tile holding it.

    The tile is the one tile_for_stored_hash names. A partial tile works if
    it contains every hash the subtree needs.
    """
    _, begin, end = tile_for_stored_hash(level, index)
    if len(tile_data) < end * HASH_SIZE or len(tile_data) % HASH_SIZE:
        raise TreeRangeError(
            f"tile of {len(tile_data)} bytes does not hold hashes"
            f" {begin}..{end - 1} of stored hash ({level}, {index})"
        )
    hashes = [tile_data[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in range(begin, end)]
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Encode entries as an entry bundle: each one prefixed by a uint16 length.

    Requires 1 <= len(entries) <= 256 and each entry at most 65,535 bytes.
    """
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise TreeRangeError(
            f"an entry bundle contains 1..256 entries, not {len(entries)}"
        )
    parts = []
    for position, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_SIZE:
            raise TreeRangeError(
                f"entry {position} is {len(entry)} bytes; an entry bundle"
                " holds entries of at most 65,535 bytes"
            )
        parts.append(len(entry).to_bytes(2, "big"))
        parts.append(entry)
    return b"".join(parts)


def decode_entry_bundle(data: bytes) -> list[bytes]:
    """Split an entry bundle into its entries; raises TileError if truncated."""
    entries: list[bytes] = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise TileError(
                f"entry bundle ends inside a length prefix at byte {offset}"
            )
        size = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        if offset + size > len(data):
            raise TileError(
                f"entry {len(entries)} of the bundle claims {size} bytes but"
                f" only {len(data) - offset} remain"
            )
        entries.append(data[offset : offset + size])
        offset += size
    return entries
