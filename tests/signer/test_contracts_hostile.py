"""Contract search with filters out of range, in a real LMDB file."""

from __future__ import annotations

import pytest

from signer.contracts import (
    MAX_CREATED,
    ContractIndex,
    ContractIndexError,
    InvalidSearchError,
)


def record(contract_id: str, created: int) -> dict:
    return {
        "contract": contract_id,
        "title": "",
        "parties": ["alice", "bob"],
        "status": "uploaded",
        "created": created,
        "updated": created,
        "steps": [],
    }


@pytest.fixture
def index(tmp_path):
    with ContractIndex(tmp_path / "contracts.lmdb") as opened:
        opened.insert(record("at-epoch", 0))
        opened.insert(record("later", 1_700_000_000_000))
        yield opened


@pytest.mark.parametrize(
    "filters",
    [
        {"created_from": -1},
        {"created_from": -1000},
        {"created_until": -1},
        {"created_from": MAX_CREATED + 1},
        {"created_until": 2**64},
        {"created_from": 2**70, "party": "alice"},
        {"created_from": -(2**70), "status": "uploaded"},
    ],
)
def test_time_out_of_range_is_rejected(index, filters):
    with pytest.raises(InvalidSearchError, match="out of range"):
        index.search(**filters)


def test_unknown_status_is_invalid_search(index):
    with pytest.raises(InvalidSearchError, match="unknown status 'foo'"):
        index.search(status="foo")


def test_invalid_search_is_an_index_error(index):
    with pytest.raises(ContractIndexError):
        index.search(limit=0)


def test_bounds_of_range_are_accepted(index):
    found = index.search(created_from=0, created_until=MAX_CREATED)
    assert [summary.contract_id for summary in found] == ["at-epoch", "later"]
    assert index.search(created_from=MAX_CREATED) == []
