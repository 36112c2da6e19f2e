"""Contract index in a real LMDB file: records, status changes and search."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signer.contracts import (
    STATUSES,
    ContractIndex,
    ContractIndexError,
    ContractNotFoundError,
)


def record(contract_id, parties, created, status="uploaded", title=""):
    return {
        "contract": contract_id,
        "title": title,
        "parties": list(parties),
        "status": status,
        "created": created,
        "updated": created,
        "steps": [],
    }


@pytest.fixture
def index(tmp_path):
    with ContractIndex(tmp_path / "contracts.lmdb") as opened:
        yield opened


def ids(summaries):
    return [summary.contract_id for summary in summaries]


def test_insert_get_round_trip(index):
    index.insert(record("c1", ["alice", "bob"], 1000, title="Lease"))
    stored = index.get("c1")
    assert stored["parties"] == ["alice", "bob"]
    assert stored["title"] == "Lease"
    with pytest.raises(ContractNotFoundError, match="'c2' not found"):
        index.get("c2")


def test_duplicate_insert_rejected(index):
    index.insert(record("c1", ["alice", "bob"], 1000))
    with pytest.raises(ContractIndexError, match="already exists"):
        index.insert(record("c1", ["carol", "dave"], 2000))
    assert index.get("c1")["parties"] == ["alice", "bob"]
    assert ids(index.search(party="carol")) == []


def test_search_by_party_status_date(index):
    index.insert(record("c1", ["alice", "bob"], 1000))
    index.insert(record("c2", ["bob", "carol"], 2000, status="signed"))
    index.insert(record("c3", ["alice", "carol"], 3000, status="signed"))
    assert ids(index.search(party="alice")) == ["c1", "c3"]
    assert ids(index.search(party="bob", status="signed")) == ["c2"]
    assert ids(index.search(status="signed")) == ["c2", "c3"]
    assert ids(index.search(created_from=2000)) == ["c2", "c3"]
    assert ids(index.search(created_until=2000)) == ["c1"]
    assert ids(index.search(party="carol", created_from=2500)) == ["c3"]
    assert ids(index.search(limit=2)) == ["c1", "c2"]
    assert ids(index.search(party="nobody")) == []


def test_update_moves_status_index(index):
    index.insert(record("c1", ["alice", "bob"], 1000))

    def sign(stored):
        stored["status"] = "signed"
        stored["updated"] = 1500

    updated = index.update("c1", sign)
    assert updated["status"] == "signed"
    assert ids(index.search(status="uploaded")) == []
    assert ids(index.search(status="signed")) == ["c1"]
    assert index.get("c1")["updated"] == 1500


def test_update_rejects_bad_changes(index):
    index.insert(record("c1", ["alice", "bob"], 1000))
    with pytest.raises(ContractIndexError, match="invalid status"):
        index.update("c1", lambda stored: stored.update(status="lost"))
    with pytest.raises(ContractIndexError, match="keep its id"):
        index.update("c1", lambda stored: stored.update(created=5))
    with pytest.raises(ContractNotFoundError):
        index.update("c9", lambda stored: None)
    assert index.get("c1")["status"] == "uploaded"
    assert ids(index.search(status="uploaded")) == ["c1"]


def test_search_rejects_bad_arguments(index):
    with pytest.raises(ContractIndexError, match="unknown status"):
        index.search(status="lost")
    with pytest.raises(ContractIndexError, match="limit"):
        index.search(limit=0)


def test_index_survives_reopen(tmp_path):
    with ContractIndex(tmp_path / "db") as first:
        first.insert(record("c1", ["alice", "bob"], 1000))
    with ContractIndex(tmp_path / "db") as second:
        assert ids(second.search(party="bob")) == ["c1"]


contracts = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2", "p3", "p4"]),
        st.sampled_from(["p1", "p2", "p3", "p4"]),
        st.integers(0, 50),
        st.sampled_from(STATUSES),
    ),
    max_size=25,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=contracts,
    party=st.none() | st.sampled_from(["p1", "p2", "p5"]),
    status=st.none() | st.sampled_from(STATUSES),
    window=st.tuples(st.integers(0, 50), st.integers(0, 51)),
)
def test_search_matches_linear_filter(tmp_path_factory, rows, party, status, window):
    # A plain filter over the same rows is the reference.
    created_from, created_until = window
    expected = []
    with ContractIndex(tmp_path_factory.mktemp("db")) as index:
        for number, (first, second, created, row_status) in enumerate(rows):
            contract_id = f"c{number:03d}"
            index.insert(record(contract_id, [first, second], created, row_status))
            if (
                (party is None or party in (first, second))
                and (status is None or status == row_status)
                and created_from <= created < created_until
            ):
                expected.append((created, contract_id))
        found = index.search(
            party=party,
            status=status,
            created_from=created_from,
            created_until=created_until,
            limit=1000,
        )
    assert ids(found) == [contract_id for _, contract_id in sorted(expected)]
