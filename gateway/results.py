"""The outcome of verifying an evidence bundle, as data that reports render.

`gateway.verify` fills a `VerificationResult`; `gateway.report` renders it as
text for the terminal, as HTML, or as PDF for a court. The result contains facts
only (digests, times, key fingerprints, each check with its reason), so that
every rendering shows the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Check:
    """One numbered verification step: passed, failed, not checked or not run.

    "not checked" means the check could not look at its evidence, for
    example an encrypted PDF without its password. The reason then names
    the option that supplies what was missing.
    """

    number: int
    title: str
    status: str = "not run"  # "passed", "failed", "not checked" or "not run"
    reason: str = ""
    details: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class TimelineStep:
    """One logged step of the contract, in log order."""

    leaf_index: int
    step: str
    claimed_time: str
    actor: str
    detail: str = ""


@dataclass
class KeyFingerprint:
    """A key or certificate the verification relied on, with its fingerprint."""

    role: str
    name: str
    fingerprint: str


@dataclass
class VerificationResult:
    """Every check of one evidence bundle and the facts they established."""

    source: str
    contract: str = ""
    origin: str = ""
    document_sha256: str = ""
    tree_size: int | None = None
    root_hash: str = ""
    checkpoint_time: str = ""
    policy_source: str = ""
    tsa_root_source: str = ""
    ca_root_source: str = ""
    checks: list[Check] = field(default_factory=list)
    timeline: list[TimelineStep] = field(default_factory=list)
    keys: list[KeyFingerprint] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True only when every check ran and passed."""
        return bool(self.checks) and all(check.passed for check in self.checks)

    @property
    def verdict(self) -> str:
        """Return VALID, NOT VALID, or NOT CHECKED when no check failed but
        one could not be made (its reason names what to pass)."""
        if self.ok:
            return "VALID"
        if any(check.status == "failed" for check in self.checks):
            return "NOT VALID"
        if any(check.status == "not checked" for check in self.checks):
            return "NOT CHECKED"
        return "NOT VALID"
