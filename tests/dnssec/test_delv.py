"""BIND's validator (`delv`, from bind9-dnsutils) on minidns's signed answers: the same signed zones
as tests/dnssec/test_validation.py, delv asking minidns directly with the parent's DS as its trust
anchor. Positive answers, CNAME chains, wildcards, compact denial of a missing name and of a type,
empty non-terminals and the signed child must come out "fully validated"; the unsigned child
"unsigned"; a wrong anchor must fail."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from test_validation import PARENT, Setup, _wrong, setup  # noqa: F401  (the module's signed zones and server)

DELV = shutil.which("delv")
pytestmark = pytest.mark.skipif(DELV is None, reason="delv comes with bind9-dnsutils (scripts/test.sh installs it)")


def delv(setup: Setup, qname: str, qtype: str = "A", ds: str | None = None) -> str:  # noqa: F811
    owner, data = setup.parent_ds[0]
    key_tag, alg, digest_type, *digest = (ds or data).split()
    anchor = setup.auth.log_path.parent / "delv-anchor.conf"
    anchor.write_text(f'trust-anchors {{ {owner} static-ds {key_tag} {alg} {digest_type} "{"".join(digest)}"; }};\n')
    p = subprocess.run([DELV, "@127.0.0.1", "-p", str(setup.auth.port), "-a", str(anchor), f"+root={PARENT}", qname, qtype],
                       capture_output=True, text=True, timeout=30)  # fmt: skip
    return p.stdout + p.stderr


@pytest.mark.parametrize("qname, qtype, verdict", [
    ("www.example.test.", "A", "; fully validated"),
    ("www.example.test.", "AAAA", "; fully validated"),
    ("example.test.", "DNSKEY", "; fully validated"),
    ("chain1.example.test.", "A", "; fully validated"),
    ("x.wild.example.test.", "A", "; fully validated"),
    ("a.b.wild.example.test.", "TXT", "; fully validated"),
    ("nothere.example.test.", "A", "; negative response, fully validated"),
    ("www.example.test.", "TXT", "; negative response, fully validated"),
    ("ent.example.test.", "A", "; negative response, fully validated"),
    ("www.secure.example.test.", "A", "; fully validated"),
    ("nope.secure.example.test.", "A", "; negative response, fully validated"),
    ("www.insecure.example.test.", "A", "; unsigned answer"),
])  # fmt: skip
def test_delv_validates(setup, qname, qtype, verdict):  # noqa: F811
    out = delv(setup, qname, qtype)
    assert verdict in out, out


def test_delv_with_a_wrong_anchor_fails(setup):  # noqa: F811
    out = delv(setup, "www.example.test.", "A", ds=_wrong(setup.parent_ds[0][1]))
    assert "fully validated" not in out and ("resolution failed" in out or "no valid" in out), out
