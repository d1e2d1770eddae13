"""API tokens (services/tokens.py): made for a project and role, found by the secret, kept only as
a SHA-256 hash, listed without secrets, deleted by id."""

import hashlib

import pytest

from minidns.services import tokens
from minidns.store.records import Invalid
from minidns.store.writer import NotFound


async def test_a_token_is_found_by_its_secret_hashed_at_rest_and_deleted(pool):
    secret = await tokens.create_token(pool, "p1", "member", "ci")
    other = await tokens.create_token(pool, "p2", "reader")
    assert secret != other and len(secret) >= 40
    assert await tokens.find_token(pool, secret) == ("p1", "member")
    assert await tokens.find_token(pool, other) == ("p2", "reader")
    assert await tokens.find_token(pool, secret + "x") is None
    stored = [r["token_hash"] for r in await pool.fetch("SELECT token_hash FROM api_tokens")]
    assert sorted(stored) == sorted(hashlib.sha256(t.encode()).hexdigest() for t in (secret, other))
    listed = await tokens.list_tokens(pool)
    assert [(t["project_id"], t["role"], t["description"]) for t in listed] == [("p1", "member", "ci"), ("p2", "reader", None)]
    assert all(secret not in str(t.values()) for t in listed)
    await tokens.delete_token(pool, str(listed[0]["id"]))
    assert await tokens.find_token(pool, secret) is None
    assert await tokens.find_token(pool, other) == ("p2", "reader")
    with pytest.raises(NotFound):
        await tokens.delete_token(pool, str(listed[0]["id"]))
    with pytest.raises(Invalid, match="not a token id"):
        await tokens.delete_token(pool, "nonesuch")


@pytest.mark.parametrize("project, role", [("p1", "root"), ("", "admin")])
async def test_a_bad_role_or_no_project_makes_no_token(pool, project, role):
    with pytest.raises(Invalid):
        await tokens.create_token(pool, project, role)
    assert await tokens.list_tokens(pool) == []


def test_every_role_is_designates_or_ingest():
    assert tokens.ROLES == ("admin", "member", "reader", "ingest")
    assert tokens.token_hash("abc") == hashlib.sha256(b"abc").hexdigest() != tokens.token_hash("abd")
