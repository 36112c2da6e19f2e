"""Key custody: signing keys the service generates and holds for signers.

What protects a custody key: it is stored as PKCS#8 PEM encrypted under a
passphrase derived from the service passphrase (LEDGER_PASSPHRASE), so
anyone who runs the service with its store and passphrase can decrypt
every custody key. The one-time password is a policy gate, not a cryptographic
barrier, because the service stores the TOTP secrets too: the service
decrypts a key only after a correct code, records a `consent` entry naming
the document first, and keeps no decrypted copy after handing the key to
the caller for one signature. A signer who needs more than that brings
their own certificate and signs client-side (custody "external").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from identity.keys import SigningKey
from ledger.appender import AppendResult

SERVICE = "service"
EXTERNAL = "external"


@dataclass(frozen=True)
class UnlockedKey:
    """A decrypted signing key with its certificate, for exactly one signature.

    `chain` runs from the issuing CA up to the root. `consent` is where the
    consent entry for this signature sits in the log. Drop the object after
    signing; the service keeps no copy of the decrypted key.
    """

    private_key: SigningKey = field(repr=False)
    certificate: x509.Certificate
    chain: list[x509.Certificate]
    consent: AppendResult

    @property
    def certificate_der(self) -> bytes:
        """The signer's certificate in DER."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def chain_der(self) -> list[bytes]:
        """The CA certificates in DER, issuing CA first."""
        return [c.public_bytes(serialization.Encoding.DER) for c in self.chain]
