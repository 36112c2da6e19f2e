"""Per-party locking: different parties consent concurrently, one party in order."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pyotp
import pytest

from identity import service as service_module
from identity.custody import UnlockedKey
from identity.details import EnterpriseDetails
from identity.errors import ConsentError, RateLimitedError
from identity.proofing import DocumentCodeVerifier
from identity.service import IdentityService, ServiceSettings
from identity.store import IdentityStore
from ledger.appender import AppendResult
from ledger.entry import decode_entry

from .conftest import PASSPHRASE, TEST_SCRYPT_N
from .test_consent import DIGEST, code_at
from .test_enrolment import ERIKA, JOHN, LEI, enrol

# How long a gated append waits for the other parties before the test fails.
# A deadlock guard only: with per-party locks the wait ends at once.
MEETING_TIMEOUT = 20


class MeetingAppender:
    """An appender that delays the first consent of each party in `meet`.

    Each of those appends waits until every party in `meet` has started one,
    so the appends meet only if their consents run concurrently. Every
    append records ("start", party) and ("end", party) in `events`.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.meet: set[str] = set()
        self.events: list[tuple[str, str]] = []
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self._arrived: set[str] = set()
        self._all_arrived = asyncio.Event()

    async def append(self, entry: bytes) -> AppendResult:
        decoded = decode_entry(entry)
        party = decoded.get("party", "")
        self.events.append(("start", party))
        self.in_flight[party] = self.in_flight.get(party, 0) + 1
        self.max_in_flight[party] = max(
            self.max_in_flight.get(party, 0), self.in_flight[party]
        )
        try:
            gated = (
                decoded["type"] == "consent"
                and party in self.meet
                and party not in self._arrived
            )
            if gated:
                self._arrived.add(party)
                if self._arrived == self.meet:
                    self._all_arrived.set()
                try:
                    await asyncio.wait_for(self._all_arrived.wait(), MEETING_TIMEOUT)
                except TimeoutError:
                    missing = sorted(self.meet - self._arrived)
                    raise AssertionError(
                        f"timed out waiting for the consents of {missing} "
                        f"while party {party} was appending; the parties' "
                        "consents ran one after another"
                    ) from None
            return await self.inner.append(entry)
        finally:
            self.in_flight[party] -= 1
            self.events.append(("end", party))


@pytest.fixture
async def meeting(tmp_path: Path, ca, sequencer, outbox, clock):
    store = IdentityStore(
        tmp_path / "identity-concurrency.lmdb", PASSPHRASE, scrypt_n=TEST_SCRYPT_N
    )
    appender = MeetingAppender(sequencer)
    yield (
        IdentityService(
            store,
            ca,
            appender,
            DocumentCodeVerifier(outbox, clock),
            ServiceSettings(),
            clock,
        ),
        appender,
    )
    store.close()


async def test_parties_overlap_one_party_ordered(
    meeting, outbox, log, clock, monkeypatch
):
    service, appender = meeting
    erika = await enrol(service, outbox, ERIKA)
    john = await enrol(service, outbox, JOHN)
    challenge = await service.begin_enterprise_enrolment(
        EnterpriseDetails("Musterfirma GmbH", LEI, erika.party_id)
    )
    firm = await service.complete_enrolment(challenge, outbox.codes[ERIKA.email])
    authenticators = {
        party.party_id: pyotp.parse_uri(service.provision_totp(party.party_id).uri)
        for party in (erika, john, firm)
    }

    decrypting_threads: list[int] = []
    decrypt = service_module.decrypt_private_key

    def recording_decrypt(pem: bytes, passphrase: bytes):
        decrypting_threads.append(threading.get_ident())
        return decrypt(pem, passphrase)

    monkeypatch.setattr(service_module, "decrypt_private_key", recording_decrypt)

    appender.meet = {erika.party_id, john.party_id, firm.party_id}
    erika_codes = [
        code_at(authenticators[erika.party_id], clock, -30),
        code_at(authenticators[erika.party_id], clock),
    ]
    results = await asyncio.gather(
        service.unlock_signing_key(erika.party_id, erika_codes[0], DIGEST),
        service.unlock_signing_key(
            john.party_id, code_at(authenticators[john.party_id], clock), DIGEST
        ),
        service.unlock_signing_key(erika.party_id, erika_codes[1], DIGEST),
        service.unlock_signing_key(
            firm.party_id, code_at(authenticators[firm.party_id], clock), DIGEST
        ),
    )
    first, john_key, second, firm_key = results
    assert all(isinstance(r, UnlockedKey) for r in results)

    # Different parties: every party's consent append started before any ended.
    consents = appender.events[-8:]
    starts = [i for i, (kind, _) in enumerate(consents) if kind == "start"]
    ends = [i for i, (kind, _) in enumerate(consents) if kind == "end"]
    first_start = {}
    for i in starts:
        first_start.setdefault(consents[i][1], i)
    assert set(first_start) == appender.meet
    assert max(first_start.values()) < min(ends)

    # One party: its two consents never overlapped, and they chain by prev.
    assert appender.max_in_flight[erika.party_id] == 1
    erika_events = [kind for kind, party in consents if party == erika.party_id]
    assert erika_events == ["start", "end", "start", "end"]
    first_entry = decode_entry(log.entries[first.consent.leaf_index])
    second_entry = decode_entry(log.entries[second.consent.leaf_index])
    assert first.consent.leaf_index < second.consent.leaf_index
    assert first_entry["prev"] == erika.leaf_hash
    assert second_entry["prev"] == first.consent.leaf_hash
    assert service.party(erika.party_id).leaf_hash == second.consent.leaf_hash
    for party, unlocked in ((john, john_key), (firm, firm_key)):
        entry = decode_entry(log.entries[unlocked.consent.leaf_index])
        assert entry["party"] == party.party_id
        assert entry["prev"] == party.leaf_hash

    # The keys were decrypted off the event loop's thread.
    assert len(decrypting_threads) == 4
    assert threading.get_ident() not in decrypting_threads
    # No lock outlives its last user.
    assert len(service._party_locks) == 0
    assert len(service._enrolment_locks) == 0


async def test_same_code_once_per_party(meeting, outbox, log, clock):
    service, appender = meeting
    erika = await enrol(service, outbox, ERIKA)
    john = await enrol(service, outbox, JOHN)
    codes = {
        party.party_id: code_at(
            pyotp.parse_uri(service.provision_totp(party.party_id).uri), clock
        )
        for party in (erika, john)
    }

    # Each party's code three times at once: exactly one unlock per party,
    # and the two parties' first consents overlap.
    appender.meet = {erika.party_id, john.party_id}
    results = await asyncio.gather(
        *(
            service.unlock_signing_key(party_id, code, DIGEST)
            for party_id, code in codes.items()
            for _ in range(3)
        ),
        return_exceptions=True,
    )

    unlocked = [r for r in results if isinstance(r, UnlockedKey)]
    rejected = [r for r in results if isinstance(r, ConsentError)]
    assert len(unlocked) == 2
    assert len(rejected) == 4
    consenting = {
        decode_entry(log.entries[u.consent.leaf_index])["party"] for u in unlocked
    }
    assert consenting == {erika.party_id, john.party_id}
    assert len(log.entries) == 4


async def test_concurrent_wrong_codes_all_count(meeting, outbox, log, clock):
    service, _ = meeting
    erika = await enrol(service, outbox, ERIKA)
    authenticator = pyotp.parse_uri(service.provision_totp(erika.party_id).uri)
    good = code_at(authenticator, clock)
    wrong = "000000" if good != "000000" else "111111"

    # The first wrong code starts a back-off, which rejects the other two
    # without checking them: no failure is lost to a concurrent update.
    results = await asyncio.gather(
        *(service.unlock_signing_key(erika.party_id, wrong, DIGEST) for _ in range(3)),
        return_exceptions=True,
    )
    wrong_codes = [r for r in results if type(r) is ConsentError]
    backed_off = [r for r in results if isinstance(r, RateLimitedError)]
    assert len(wrong_codes) == 1
    assert len(backed_off) == 2
    assert len(log.entries) == 1
