"""Build the C accelerator ledger.merkle._native; metadata is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ledger.merkle._native",
            sources=["ledger/merkle/_native.c"],
            # SHA-256 comes from OpenSSL's libcrypto (Debian: libssl-dev).
            libraries=["crypto"],
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
        )
    ]
)
