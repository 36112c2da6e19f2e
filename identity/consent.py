"""The TOTP gate in front of every signature: replay, rate limit, lockout.

Pure: `check_code` takes the stored state of a party's TOTP and returns the
new state with the outcome. The service stores that state before it acts on
the outcome, so a failed attempt counts even if the caller gives up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from identity import totp
from identity.errors import ConsentError, RateLimitedError


@dataclass(frozen=True)
class TotpPolicy:
    """The limits applied to one-time passwords.

    `window` is the clock skew accepted, in time steps either side. After
    each wrong code the next attempt waits 2**(failures - 1) seconds, at
    most `max_backoff` seconds. After `max_failures` wrong codes in a row
    the party is locked out for `lockout` seconds.
    """

    window: int = 1
    period: int = totp.DEFAULT_PERIOD
    digits: int = totp.DEFAULT_DIGITS
    max_failures: int = 5
    max_backoff: int = 30
    lockout: int = 15 * 60


def new_state(sealed_secret: bytes) -> dict[str, Any]:
    """Return the TOTP state of a freshly provisioned secret."""
    return {
        "secret": sealed_secret,
        "last_step": -1,
        "failures": 0,
        "not_before": 0,
    }


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt: the state to store, then the step or error."""

    state: dict[str, Any]
    time_step: int | None
    error: ConsentError | None


def check_code(
    state: dict[str, Any], secret: bytes, code: str, now: float, policy: TotpPolicy
) -> Outcome:
    """Check `code` against `secret` at unix time `now` under `policy`.

    Exactly one of `time_step` and `error` is set in the outcome.
    """
    state = dict(state)

    # 1. A locked-out or backing-off party gets no check at all, and the
    #    refused attempt does not count as a failure.
    wait = int(state["not_before"] - now + 0.999)
    if wait > 0:
        locked = state["failures"] >= policy.max_failures
        reason = "locked after repeated wrong codes" if locked else "too many attempts"
        return Outcome(
            state,
            None,
            RateLimitedError(f"one-time password {reason}; retry in {wait} s", wait),
        )
    if state["failures"] >= policy.max_failures:
        state["failures"] = 0

    # 2. Find the time step the code belongs to.
    step = None
    if isinstance(code, str) and code.isdigit() and len(code) == policy.digits:
        step = totp.match_time_step(
            secret, code, now, policy.window, policy.period, policy.digits
        )

    # 3. A wrong code counts as a failure and delays the next attempt.
    if step is None:
        state["failures"] += 1
        if state["failures"] >= policy.max_failures:
            state["not_before"] = now + policy.lockout
            message = (
                f"wrong one-time password; {policy.max_failures} wrong codes in a "
                f"row, locked for {policy.lockout} s"
            )
        else:
            delay = min(2 ** (state["failures"] - 1), policy.max_backoff)
            state["not_before"] = now + delay
            message = "wrong or expired one-time password; check the device clock"
        return Outcome(state, None, ConsentError(message))

    # 4. A code is good once: RFC 6238 section 5.2 requires that a verifier not
    #    accept the second attempt of the same OTP. Later steps only.
    if step <= state["last_step"]:
        return Outcome(
            state,
            None,
            ConsentError("one-time password already used; wait for the next code"),
        )

    state["last_step"] = step
    state["failures"] = 0
    state["not_before"] = 0
    return Outcome(state, step, None)
