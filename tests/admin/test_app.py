"""The HTTP server itself: open endpoints, tokens (configured and stored), roles, the error shape
and request ids, readiness — over real HTTP against a real `minidns serve`."""

from __future__ import annotations

import re

from conftest import ADMIN, ALICE, INGEST, READER


def error_shape(r, status: int, kind: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"code", "type", "message", "request_id"} and body["code"] == status, body
    assert body["request_id"] == r.headers["X-Openstack-Request-Id"] and body["request_id"].startswith("req-")
    if kind is not None:
        assert body["type"] == kind, body
    return body


def test_open_endpoints_need_no_token(api):
    assert api.get("/healthz", token=None).json() == {"status": "ok"}
    r = api.get("/readyz", token=None)
    assert r.status_code == 200 and r.json()["state"] == "ready" and r.json()["database"] == "ok"
    assert [v["id"] for v in api.get("/", token=None).json()["versions"]] == ["v2", "v2.0", "v2.1"]
    assert api.get("/openapi.json", token=None).json()["openapi"].startswith("3.")
    text = api.get("/metrics", token=None).text
    assert "# TYPE minidns_zones gauge" in text and re.search(r"^minidns_zones \d+$", text, re.M)
    assert 'minidns_database_state{state="ready"} 1' in text


def test_missing_and_unknown_tokens_are_401(api):
    error_shape(api.get("/v2/zones", token=None), 401, "unauthorized")
    error_shape(api.get("/v2/zones", token="not-a-token-at-all"), 401, "unauthorized")
    assert "X-Openstack-Request-Id" in api.get("/healthz", token=None).headers


def test_ingest_tokens_post_events_only_and_sudo_is_for_admins(api):
    error_shape(api.get("/v2/zones", token=INGEST), 403, "forbidden")
    error_shape(api.get("/v2/zones", token=ALICE, headers={"X-Auth-Sudo-Project-ID": "bob"}), 403, "forbidden")
    error_shape(api.get("/v2/zones", token=READER, headers={"X-Auth-All-Projects": "true"}), 403, "forbidden")


def test_unknown_path_and_method_are_json_errors(api):
    error_shape(api.get("/v2/nothing-here"), 404, "not_found")
    error_shape(api.request("PUT", "/healthz", token=None), 405, "method_not_allowed")


def test_a_stored_token_works_and_stops_working_when_deleted(api, cli):
    db = ("--database-url", api.database_url)
    p = cli("token", "create", "--project", "carol", "--role", "admin", *db)
    assert p.returncode == 0, p.stderr
    token = p.stdout.strip()
    assert len(token) >= 32
    listed = cli("token", "list", *db).stdout
    assert "carol\tadmin" in listed and token not in listed  # only its hash is kept
    assert api.get("/readyz", token=token).status_code == 200
    assert api.get("/v2/nothing", token=token).status_code == 404  # authenticated, then not found
    token_id = listed.split("\t", 1)[0]
    assert cli("token", "delete", token_id, *db).returncode == 0
    # The server caches a token for a few seconds at most; a deleted one is refused after that.
    import time

    deadline = time.monotonic() + 15
    while api.get("/v2/nothing", token=token).status_code != 401:
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_bad_token_commands_fail_cleanly(cli, database_url):
    p = cli("token", "create", "--project", "p", "--role", "root", "--database-url", database_url)
    assert p.returncode != 0 and "invalid choice" in p.stderr
    p = cli("token", "delete", "not-an-id", "--database-url", database_url)
    assert p.returncode == 1 and "not a token id" in p.stderr and "Traceback" not in p.stderr


def test_requests_are_logged_with_their_id(api):
    r = api.get("/healthz", token=None)
    rid = r.headers["X-Openstack-Request-Id"]
    api.served.wait_for(rf"{rid} GET /healthz -> 200")


def test_the_api_port_in_use_is_a_clear_error(serve, database_url, api):
    port = int(api.url.rsplit(":", 1)[1])
    import pytest

    with pytest.raises(AssertionError) as e:
        serve("--database-url", database_url, "--api-listen", f"127.0.0.1:{port}")
    assert "address already in use" in str(e.value) and "cannot serve" in str(e.value)
