"""Identity: enrolment, certificate authority, TOTP consent, key custody.

`identity.service.IdentityService` is the entry point; `identity.ca` is the
certificate authority and `identity.http` serves it under /ca/. Personal
data stays in `identity.store`; the log receives only commitments.
"""
