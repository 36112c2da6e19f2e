"""The gateway's delivery of identity-proofing codes: a local outbox folder.

The built-in proofing verifier sends a one-time code to the e-mail address
or phone number being enrolled. Without a mail or SMS gateway configured,
the gateway writes each message as one file in its outbox folder, where an
operator (or the demo) picks it up.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path


class Outbox:
    """Writes each proofing code to `folder/<digest of address>-<time>.json`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def send_code(self, channel: str, address: str, code: str) -> None:
        """Deliver `code` for `address` over `channel` ("email" or "phone")."""
        name = hashlib.sha256(address.encode()).hexdigest()[:16]
        message = {"channel": channel, "address": address, "code": code}
        path = self.folder / f"{name}-{time.time_ns()}.json"
        path.write_text(json.dumps(message))

    def latest_code(self, address: str) -> str:
        """Return the newest code sent to `address`; raise LookupError if none."""
        name = hashlib.sha256(address.encode()).hexdigest()[:16]
        paths = sorted(self.folder.glob(f"{name}-*.json"))
        if not paths:
            raise LookupError(f"no proofing code was sent to {address}")
        return json.loads(paths[-1].read_text())["code"]
