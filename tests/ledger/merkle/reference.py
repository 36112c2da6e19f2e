"""A plain Merkle tree written straight from RFC 9162 section 2.1, for tests.

It recomputes every hash from the leaves with the recursive definitions of
MTH, PATH and PROOF/SUBPROOF, sharing no code with `ledger.merkle`.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache


def rfc_leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class ReferenceTree:
    """The RFC 9162 tree over the leaves D[0:n], computed recursively."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.mth = lru_cache(maxsize=None)(self._mth)

    def _mth(self, begin: int, end: int) -> bytes:
        n = end - begin
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return rfc_leaf_hash(self.leaves[begin])
        k = _largest_power_of_two_below(n)
        left = self.mth(begin, begin + k)
        right = self.mth(begin + k, end)
        return hashlib.sha256(b"\x01" + left + right).digest()

    def root(self, n: int) -> bytes:
        return self.mth(0, n)

    def path(self, m: int, begin: int, end: int) -> list[bytes]:
        """PATH(m, D[begin:end]) of RFC 9162 section 2.1.3.1."""
        n = end - begin
        if n == 1:
            return []
        k = _largest_power_of_two_below(n)
        if m < k:
            return self.path(m, begin, begin + k) + [self.mth(begin + k, end)]
        return self.path(m - k, begin + k, end) + [self.mth(begin, begin + k)]

    def inclusion(self, m: int, n: int) -> list[bytes]:
        return self.path(m, 0, n)

    def subproof(self, m: int, begin: int, end: int, complete: bool) -> list[bytes]:
        """SUBPROOF(m, D[begin:end], b) of RFC 9162 section 2.1.4.1."""
        n = end - begin
        if m == n:
            return [] if complete else [self.mth(begin, end)]
        k = _largest_power_of_two_below(n)
        if m <= k:
            return self.subproof(m, begin, begin + k, complete) + [
                self.mth(begin + k, end)
            ]
        return self.subproof(m - k, begin + k, end, False) + [
            self.mth(begin, begin + k)
        ]

    def consistency(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[n]) for 0 < m < n."""
        return self.subproof(m, 0, n, True)
