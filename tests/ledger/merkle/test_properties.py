"""Property tests: agreement with pymerkle and rejection of corrupted proofs."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from ledger.merkle import (
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

from .conftest import build_reader
from .reference import ReferenceTree

MAX_LEAVES = 300
LEAVES = [b"entry-%d" % i for i in range(MAX_LEAVES)]
READER = build_reader(LEAVES)
REFERENCE = ReferenceTree(LEAVES)


def _pymerkle_tree(leaves: list[bytes]) -> InmemoryTree:
    tree = InmemoryTree(algorithm="sha256")
    for data in leaves:
        tree.append_entry(data)
    return tree


PYMERKLE = _pymerkle_tree(LEAVES)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_agrees_with_pymerkle(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, MAX_LEAVES), label="tree_size")
    index = data.draw(st.integers(0, size - 1), label="leaf_index")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert root_hash(size, READER) == PYMERKLE.get_root(size)
        # pymerkle counts leaves from 1 and starts its path with the leaf hash.
        path = PYMERKLE.prove_inclusion(index + 1, size).path
    assert path[0] == leaf_hash(LEAVES[index])
    assert inclusion_proof(index, size, READER) == list(path[1:])


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_agrees_with_pymerkle_fresh_tree(data: st.DataObject) -> None:
    leaves = data.draw(st.lists(st.binary(max_size=40), min_size=1, max_size=70))
    reader = build_reader(leaves)
    tree = _pymerkle_tree(leaves)
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert root_hash(size, reader) == tree.get_root(size)
        path = tree.prove_inclusion(index + 1, size).path
    proof = inclusion_proof(index, size, reader)
    assert proof == list(path[1:])
    verify_inclusion(leaf_hash(leaves[index]), index, size, proof, tree.get_root(size))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_consistency_matches_reference(data: st.DataObject) -> None:
    size2 = data.draw(st.integers(2, MAX_LEAVES), label="size2")
    size1 = data.draw(st.integers(1, size2 - 1), label="size1")
    proof = consistency_proof(size1, size2, READER)
    assert proof == REFERENCE.consistency(size1, size2)
    verify_consistency(
        size1, size2, proof, REFERENCE.root(size1), REFERENCE.root(size2)
    )


def _flips(value: bytes):
    for bit in range(len(value) * 8):
        flipped = bytearray(value)
        flipped[bit // 8] ^= 1 << (bit % 8)
        yield bit, bytes(flipped)


def _accepted(verify, *arguments) -> bool:
    try:
        verify(*arguments)
    except ProofError:
        return False
    return True


def _assert_inclusion_bit_flips_rejected(index: int, size: int) -> None:
    proof = inclusion_proof(index, size, READER)
    leaf = leaf_hash(LEAVES[index])
    root = REFERENCE.root(size)
    assert _accepted(verify_inclusion, leaf, index, size, proof, root)
    for position, element in enumerate(proof):
        for bit, flipped in _flips(element):
            corrupted = proof[:position] + [flipped] + proof[position + 1 :]
            accepted = _accepted(verify_inclusion, leaf, index, size, corrupted, root)
            assert not accepted, ("proof", position, bit, index, size)
    for bit, flipped in _flips(leaf):
        accepted = _accepted(verify_inclusion, flipped, index, size, proof, root)
        assert not accepted, ("leaf_hash", bit, index, size)
    for bit, flipped in _flips(root):
        accepted = _accepted(verify_inclusion, leaf, index, size, proof, flipped)
        assert not accepted, ("root_hash", bit, index, size)


def _assert_consistency_bit_flips_rejected(size1: int, size2: int) -> None:
    proof = consistency_proof(size1, size2, READER)
    root1 = REFERENCE.root(size1)
    root2 = REFERENCE.root(size2)
    assert _accepted(verify_consistency, size1, size2, proof, root1, root2)
    for position, element in enumerate(proof):
        for bit, flipped in _flips(element):
            corrupted = proof[:position] + [flipped] + proof[position + 1 :]
            accepted = _accepted(
                verify_consistency, size1, size2, corrupted, root1, root2
            )
            assert not accepted, ("proof", position, bit, size1, size2)
    for bit, flipped in _flips(root1):
        accepted = _accepted(verify_consistency, size1, size2, proof, flipped, root2)
        assert not accepted, ("root1", bit, size1, size2)
    for bit, flipped in _flips(root2):
        accepted = _accepted(verify_consistency, size1, size2, proof, root1, flipped)
        assert not accepted, ("root2", bit, size1, size2)


def test_bit_flips_rejected_small_trees() -> None:
    for size in range(1, 11):
        for index in range(size):
            _assert_inclusion_bit_flips_rejected(index, size)
        for size1 in range(1, size + 1):
            _assert_consistency_bit_flips_rejected(size1, size)


@settings(max_examples=10, deadline=None)
@given(st.data())
def test_bit_flips_rejected(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, MAX_LEAVES), label="tree_size")
    index = data.draw(st.integers(0, size - 1), label="leaf_index")
    size1 = data.draw(st.integers(1, size), label="size1")
    _assert_inclusion_bit_flips_rejected(index, size)
    _assert_consistency_bit_flips_rejected(size1, size)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_mutated_proofs_rejected(data: st.DataObject) -> None:
    size = data.draw(st.integers(2, MAX_LEAVES), label="tree_size")
    index = data.draw(st.integers(0, size - 1), label="leaf_index")
    proof = inclusion_proof(index, size, READER)
    leaf = leaf_hash(LEAVES[index])
    root = REFERENCE.root(size)
    mutations = [
        (leaf, index ^ 1, size, proof),
        (leaf, index, size, proof + [root]),
        (leaf, index, size, [root] + proof),
        (leaf, index, size * 2, proof),
    ]
    if proof:
        mutations.append((leaf, index, size, proof[:-1]))
    if index + 1 < size:
        mutations.append((leaf, index + 1, size, proof))
    for arguments in mutations:
        if arguments[1] >= arguments[2]:
            continue
        with pytest.raises(ProofError):
            verify_inclusion(*arguments, root)
