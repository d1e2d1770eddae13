"""API tokens: made with `minidns token create` (or listed in the configuration), kept as SHA-256
hashes, each tied to a project and a role (admin, member, reader, ingest)."""

from __future__ import annotations

import hashlib
import secrets

import asyncpg

from ..store.records import Invalid
from ..store.writer import NotFound

ROLES = ("admin", "member", "reader", "ingest")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(pool: asyncpg.Pool, project: str, role: str, description: str | None = None) -> str:
    """A new token for `project` with `role`; returns the token (the only time it is shown)."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    if not project:
        raise Invalid("a token needs a project")
    token = secrets.token_urlsafe(32)
    await pool.execute(
        "INSERT INTO api_tokens (token_hash, project_id, role, description) VALUES ($1, $2, $3, $4)",
        token_hash(token), project, role, description,
    )  # fmt: skip
    return token


async def find_token(pool: asyncpg.Pool, token: str) -> tuple[str, str] | None:
    """(project, role) of a stored token, or None."""
    row = await pool.fetchrow("SELECT project_id, role FROM api_tokens WHERE token_hash = $1", token_hash(token))
    return (row["project_id"], row["role"]) if row else None


async def list_tokens(pool: asyncpg.Pool) -> list[dict]:
    return [dict(r) for r in await pool.fetch(
        "SELECT id, project_id, role, description, created_at FROM api_tokens ORDER BY created_at")]  # fmt: skip


async def delete_token(pool: asyncpg.Pool, token_id: str) -> None:
    import uuid

    try:
        tid = uuid.UUID(token_id)
    except ValueError:
        raise Invalid(f"{token_id!r} is not a token id") from None
    if await pool.fetchval("DELETE FROM api_tokens WHERE id = $1 RETURNING id", tid) is None:
        raise NotFound(f"no token {token_id}")
