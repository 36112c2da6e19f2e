"""A test PKI for PDF signing, built from code: root, issuing CA, signers, TSA.

The certificates are declared in `CERTIFICATE_SPECS` and built with
`cryptography` once per test session. Both CAs publish a CRL; the issuing
CA's CRL revokes the `revoked` signer, so that validation has a negative
case. The time-stamp authority is this project's `ledger.tsa` authority with
a certificate from the test root.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fpdf import FPDF

from ledger.tsa.authority import TimeStampAuthority
from ledger.tsa.keys import TsaCredentials
from ledger.tsa.serial import SerialNumbers
from signer.keys import InMemorySigner, KeyAlgorithm, generate_signing_key
from signer.pades import AuthorityTimeStamper
from signer.validate import SignatureReport, async_validate_pdf

NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class CertSpec:
    """One certificate of the test PKI; `issuer` names an earlier spec."""

    name: str
    common_name: str
    issuer: str | None
    ca: bool = False
    time_stamping: bool = False
    revoked: bool = False
    algorithm: KeyAlgorithm = KeyAlgorithm.ECDSA_P256


CERTIFICATE_SPECS = (
    CertSpec("root", "Test Root CA", None, ca=True),
    CertSpec("issuing", "Test Issuing CA", "root", ca=True),
    CertSpec("alice", "Alice Example", "issuing"),
    CertSpec("bob", "Bob Example", "issuing"),
    CertSpec("rsa", "Carol RSA Example", "issuing", algorithm=KeyAlgorithm.RSA_3072),
    CertSpec("revoked", "Mallory Revoked", "issuing", revoked=True),
    CertSpec("tsa", "Test Time-Stamp Authority", "root", time_stamping=True),
)


@dataclass
class SigningPki:
    """Keys, certificates and CRLs of the test PKI, by spec name."""

    keys: dict[str, object] = field(default_factory=dict)
    certs: dict[str, x509.Certificate] = field(default_factory=dict)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)

    @property
    def trust_roots(self) -> list[x509.Certificate]:
        return [self.certs["root"]]

    @property
    def chain(self) -> list[x509.Certificate]:
        """The certificates above a signer: issuing CA, then root."""
        return [self.certs["issuing"], self.certs["root"]]

    def signer(self, name: str) -> InMemorySigner:
        return InMemorySigner(self.keys[name], self.certs[name], self.chain)  # type: ignore[arg-type]

    async def validate(
        self, data: bytes, password: str | None = None, diff_analysis: bool = True
    ) -> list[SignatureReport]:
        return await async_validate_pdf(
            data,
            self.trust_roots,
            other_certs=self.chain,
            crls=self.crls,
            password=password,
            diff_analysis=diff_analysis,
        )


def _key_usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=not ca,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def build_pki(specs: tuple[CertSpec, ...] = CERTIFICATE_SPECS) -> SigningPki:
    """Build every certificate of `specs` in order, then one CRL per CA."""
    pki = SigningPki()
    for spec in specs:
        key = generate_signing_key(spec.algorithm)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name)])
        issuer_name = subject if spec.issuer is None else pki.certs[spec.issuer].subject
        issuer_key = key if spec.issuer is None else pki.keys[spec.issuer]
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=365))
            .add_extension(
                x509.BasicConstraints(ca=spec.ca, path_length=None), critical=True
            )
            .add_extension(_key_usage(spec.ca), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    issuer_key.public_key()  # type: ignore[union-attr]
                ),
                critical=False,
            )
        )
        if spec.issuer is not None:
            # pyHanko checks revocation only for certificates that name a
            # CRL source. Tests hand the CRLs over directly and disable
            # fetching, so this loopback address is never contacted.
            url = f"http://127.0.0.1:9/crl/{spec.issuer}.crl"
            builder = builder.add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            full_name=[x509.UniformResourceIdentifier(url)],
                            relative_name=None,
                            reasons=None,
                            crl_issuer=None,
                        )
                    ]
                ),
                critical=False,
            )
        if spec.time_stamping:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                critical=True,
            )
        pki.keys[spec.name] = key
        pki.certs[spec.name] = builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    for ca in (spec for spec in specs if spec.ca):
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(pki.certs[ca.name].subject)
            .last_update(NOW - datetime.timedelta(hours=1))
            .next_update(NOW + datetime.timedelta(days=7))
            .add_extension(x509.CRLNumber(1), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    pki.keys[ca.name].public_key()  # type: ignore[union-attr]
                ),
                critical=False,
            )
        )
        for spec in specs:
            if spec.issuer == ca.name and spec.revoked:
                crl = crl.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(pki.certs[spec.name].serial_number)
                    .revocation_date(NOW - datetime.timedelta(hours=2))
                    .build()
                )
        pki.crls.append(crl.sign(pki.keys[ca.name], hashes.SHA256()))  # type: ignore[arg-type]
    return pki


@pytest.fixture(scope="session")
def pki() -> SigningPki:
    return build_pki()


@pytest.fixture(scope="session")
def tsa_authority(
    pki: SigningPki, tmp_path_factory: pytest.TempPathFactory
) -> TimeStampAuthority:
    """This project's RFC 3161 authority, with a certificate from the test root."""
    credentials = TsaCredentials(
        private_key=pki.keys["tsa"],  # type: ignore[arg-type]
        certificate=pki.certs["tsa"],
        chain=[pki.certs["root"]],
    )
    return TimeStampAuthority(
        credentials, SerialNumbers(tmp_path_factory.mktemp("tsa"))
    )


@pytest.fixture(scope="session")
def timestamper(tsa_authority: TimeStampAuthority) -> AuthorityTimeStamper:
    return AuthorityTimeStamper(tsa_authority)


def make_contract(pages: int = 1) -> bytes:
    """Generate a plain contract PDF of `pages` pages with fpdf2."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.cell(0, 10, f"Service agreement, page {number} of {pages}")
        pdf.ln(12)
        pdf.multi_cell(0, 5, "The parties agree to the terms set out below. " * 30)
    return bytes(pdf.output())


@pytest.fixture(scope="session")
def contract_pdf() -> bytes:
    return make_contract(1)


def change_one_signed_byte(data: bytes) -> bytes:
    """Return `data` with the minor digit of its `%PDF-1.x` header changed.

    The header lies inside the first byte range of every signature, and
    readers still parse the file, so validators must report a digest
    mismatch rather than a parse error.
    """
    position = data.index(b"%PDF-1.") + len(b"%PDF-1.")
    digit = data[position : position + 1]
    replacement = b"4" if digit != b"4" else b"5"
    return data[:position] + replacement + data[position + 1 :]
