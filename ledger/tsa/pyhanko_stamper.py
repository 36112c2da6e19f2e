"""A pyHanko TimeStamper backed by an in-process TimeStampAuthority.

pyHanko's HTTPTimeStamper pointed at `POST /tsa` needs no code from here.
This class saves the HTTP round trip when the signer runs in the same
process as the authority. No other module of ledger.tsa imports pyHanko.
"""

from __future__ import annotations

from asn1crypto import tsp
from pyhanko.sign.timestamps.api import TimeStamper

from ledger.tsa.authority import TimeStampAuthority
from ledger.tsa.response import TimeStampResp


class AuthorityTimeStamper(TimeStamper):
    """pyHanko TimeStamper that sends its requests to a local TimeStampAuthority."""

    def __init__(
        self, authority: TimeStampAuthority, include_nonce: bool = True
    ) -> None:
        super().__init__(include_nonce=include_nonce)
        self.authority = authority

    async def async_request_tsa_response(
        self, req: tsp.TimeStampReq
    ) -> tsp.TimeStampResp:
        """Issue a response to `req`; a rejection reaches pyHanko as its status."""
        # TimeStampResp declares the token optional, so that pyHanko's
        # status check also reads rejections (asn1crypto's class cannot).
        return TimeStampResp.load(self.authority.issue(req.dump()))  # type: ignore[return-value]
