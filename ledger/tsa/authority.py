"""The time-stamping authority: turns TimeStampReq into TimeStampResp."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path

from ledger.tsa.errors import RequestRejected
from ledger.tsa.keys import TsaCredentials
from ledger.tsa.request import DIGEST_SIZES, parse_request
from ledger.tsa.response import granted_response, rejection_response
from ledger.tsa.serial import SerialNumbers
from ledger.tsa.token import Accuracy, TokenSigner, encode_message_imprint

# A UUID-derived OID (ITU-T X.667, arc 2.25) that names this service's
# time-stamp policy without a registered enterprise number. Operators with
# their own policy OID set it in TimeStampAuthority(policy=...).
DEFAULT_POLICY = "2.25.189389155260192215701881172507342622797"

# The genTime accuracy claimed by default: the host clock is assumed to be
# NTP-synchronised within one second, which this code does not check.
DEFAULT_ACCURACY = Accuracy(seconds=1)


def utc_now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


class TimeStampAuthority:
    """Issues RFC 3161 time-stamp tokens with one key, certificate and policy.

    `serials` must be the only SerialNumbers of this process for the data
    folder. `accepted_policies` are the policy OIDs a request may ask for;
    tokens always carry `policy`, which is therefore always accepted.
    """

    def __init__(
        self,
        credentials: TsaCredentials,
        serials: SerialNumbers,
        *,
        policy: str = DEFAULT_POLICY,
        accepted_policies: Collection[str] = (),
        accuracy: Accuracy = DEFAULT_ACCURACY,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.credentials = credentials
        self.policy = policy
        self.accepted_policies = frozenset({policy, *accepted_policies})
        self._serials = serials
        self._clock = clock
        self._signer = TokenSigner(credentials, policy, accuracy)

    @classmethod
    def open(
        cls,
        data_dir: Path,
        credentials: TsaCredentials,
        *,
        policy: str = DEFAULT_POLICY,
        accepted_policies: Collection[str] = (),
        accuracy: Accuracy = DEFAULT_ACCURACY,
    ) -> TimeStampAuthority:
        """Create an authority that reserves its serial epoch in `data_dir`."""
        return cls(
            credentials,
            SerialNumbers(Path(data_dir)),
            policy=policy,
            accepted_policies=accepted_policies,
            accuracy=accuracy,
        )

    @property
    def serial_epoch(self) -> int:
        """The serial epoch this authority reserved in its data folder."""
        return self._serials.epoch

    def issue(self, request_der: bytes) -> bytes:
        """Return the DER TimeStampResp for a DER TimeStampReq.

        Bad input never raises: it gets a response with status rejection
        and the PKIFailureInfo bit of the fault, and no token.
        """
        try:
            request = parse_request(request_der, self.accepted_policies)
        except RequestRejected as rejection:
            return rejection_response(rejection.failure_info, rejection.text)
        token = self._make_token(
            request.message_imprint, request.nonce, request.cert_req
        )
        return granted_response(token)

    def stamp(
        self, data: bytes, hash_algorithm: str = "sha256", *, prehashed: bool = False
    ) -> bytes:
        """Return a TimeStampToken DER over `data`, or over a digest if prehashed.

        hash_algorithm is "sha256", "sha384" or "sha512"; with prehashed,
        len(data) equals that algorithm's digest size. The token carries
        the TSA certificate.
        """
        if hash_algorithm not in DIGEST_SIZES:
            raise ValueError(
                f"hash algorithm {hash_algorithm!r} is not supported; use one "
                f"of {sorted(DIGEST_SIZES)}"
            )
        if prehashed:
            if len(data) != DIGEST_SIZES[hash_algorithm]:
                raise ValueError(
                    f"{hash_algorithm} digest must have "
                    f"{DIGEST_SIZES[hash_algorithm]} bytes, got {len(data)}"
                )
            digest = data
        else:
            digest = hashlib.new(hash_algorithm, data).digest()
        imprint = encode_message_imprint(hash_algorithm, digest)
        return self._make_token(imprint, None, True)

    def _make_token(
        self, message_imprint: bytes, nonce: int | None, cert_req: bool
    ) -> bytes:
        serial_number = self._serials.next()
        tst_info = self._signer.encode_tst_info(
            message_imprint, serial_number, self._clock(), nonce
        )
        return self._signer.sign(tst_info, cert_req)
