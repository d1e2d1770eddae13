"""The optional C accelerator for P-256 DNSSEC signatures (minidns/dnssec/_p256.c). Everything
else is in pyproject.toml. When it cannot be built (no C compiler, no Python headers, no
libcrypto.so.3), the install goes on without it and minidns signs with `cryptography`."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("minidns.dnssec._p256", ["minidns/dnssec/_p256.c"], libraries=[":libcrypto.so.3"], optional=True),
    ]
)
