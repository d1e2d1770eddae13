"""The CloudStack API as the sink asks it: signed GET requests (apiKey and an HMAC-SHA1 signature, as
the management server's ApiServer.verifyRequest checks them), JSON answers; Unreachable while
CloudStack cannot answer, None for an entity that does not exist."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import time
from urllib.parse import quote

import aiohttp
import orjson
import yarl

from .message import Unreachable

NOT_FOUND = 431  # ApiErrorCode.PARAM_ERROR: "entity does not exist" for an id= of a removed entity
WAIT = (401, 429, 432)  # refused signature or key, API rate limit, command not allowed for the key's role
EXPIRES = 600  # seconds a signed request stays valid (signatureVersion 3)
JOB_DONE = 1  # queryAsyncJobResult jobstatus: 0 pending, 1 succeeded, 2 failed


class Refused(Unreachable):
    """CloudStack refused the key pair or the command (401, 432) or asks to slow down (429): the
    events wait until an operator or time sets it right; asking again at once would not help."""


class ApiError(Exception):
    """CloudStack refused the request for a reason that waiting will not change (its errorcode and
    errortext)."""

    def __init__(self, code: int, text: str):
        super().__init__(f"{code} {text}")
        self.code, self.text = code, text


def cs_encode(value: str) -> str:
    """A value encoded as ApiServer encodes it before it checks the signature:
    java.net.URLEncoder.encode(value, "UTF-8") with "+" made "%20" — letters, digits and . - * _
    as they are, everything else (~ too, unlike RFC 3986) as %XX of its UTF-8 octets."""
    return quote(value, safe="*").replace("~", "%7E")


def signature(params: dict[str, str], secret: str) -> str:
    """The signature of a request: its parameters sorted by name, each `name=encoded value`, joined
    with "&", the whole string lower-cased, HMAC-SHA1 with the secret key, base64 (CloudStack
    Developer's Guide, "Signing API Requests")."""
    unsigned = "&".join(f"{k}={cs_encode(v)}" for k, v in sorted(params.items()))
    digest = hmac.new(secret.encode(), unsigned.lower().encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_query(command: str, params: dict, api_key: str, secret: str, now: float) -> str:
    """The query string of a signed request, valid until `now` + EXPIRES (signatureVersion 3, so
    it is accepted where enforce.post.requests.and.timestamps is set)."""
    expires = datetime.datetime.fromtimestamp(now + EXPIRES, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S%z")
    p = {**{k: str(v) for k, v in params.items()}, "command": command, "apiKey": api_key, "response": "json",
         "signatureVersion": "3", "expires": expires}  # fmt: skip
    p["signature"] = signature(p, secret)
    return "&".join(f"{k}={cs_encode(v)}" for k, v in p.items())


def answer(command: str, status: int, body: bytes) -> dict:
    """The object inside `<command>response`; Refused or Unreachable for an answer to wait out,
    ApiError for a refusal waiting will not change (431 and the other 4xx)."""
    inner = response_object(body)
    if inner is None:
        raise Unreachable(f"CloudStack answered {command} with HTTP {status} and no JSON response object")
    if status == 200 and "errorcode" not in inner:
        return inner
    code = inner["errorcode"] if isinstance(inner.get("errorcode"), int) else status
    text = f"CloudStack answered {command} with {code}: {inner.get('errortext', '')}"
    if code in WAIT or status in WAIT:
        raise Refused(text)
    if code >= 500 or status >= 500:
        raise Unreachable(text)
    raise ApiError(code, str(inner.get("errortext", "")))


def response_object(body: bytes) -> dict | None:
    """The one object a JSON answer holds: `<command>response`, or `errorresponse`."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    inner = next(iter(doc.values())) if isinstance(doc, dict) and len(doc) == 1 else None
    return inner if isinstance(inner, dict) else None


class CloudStackAPI:
    """A client of one management server (its API URL, e.g. http://mgmt:8080/client/api) with
    one key pair. Each request has `timeout` seconds; a connection failure, a time-out or a 5xx
    answer is tried `attempts` times before Unreachable is raised."""

    def __init__(self, url: str, api_key: str, secret_key: str, *, timeout: float = 10.0, attempts: int = 3,
                 retry_delay: float = 0.5, clock=time.time):  # fmt: skip
        self.url, self.api_key, self.secret_key, self.clock = url, api_key, secret_key, clock
        self.timeout, self.attempts, self.retry_delay = aiohttp.ClientTimeout(total=timeout), attempts, retry_delay
        self.session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def call(self, command: str, **params) -> dict:
        """The command's response object (Unreachable, ApiError)."""
        for attempt in range(1, self.attempts + 1):
            try:
                return await self.send(command, params)
            except Refused:
                raise
            except Unreachable:
                if attempt == self.attempts:
                    raise
            await asyncio.sleep(self.retry_delay * attempt)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def send(self, command: str, params: dict) -> dict:
        """One signed request and its answer."""
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=self.timeout)
        query = signed_query(command, params, self.api_key, self.secret_key, self.clock())
        url = yarl.URL(f"{self.url}?{query}", encoded=True)
        try:
            async with self.session.get(url) as resp:
                return answer(command, resp.status, await resp.read())
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise Unreachable(f"CloudStack API at {yarl.URL(self.url).origin()}: {e!r}") from None

    async def first(self, command: str, key: str, **params) -> dict | None:
        """The first item of a list command's answer; None when the list is empty or the id names
        nothing (431)."""
        try:
            items = (await self.call(command, listall="true", **params)).get(key)
        except ApiError as e:
            if e.code == NOT_FOUND:
                return None
            raise
        return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else None

    async def virtual_machine(self, vm_id: str) -> dict | None:
        return await self.first("listVirtualMachines", "virtualmachine", id=vm_id)

    async def account(self, account_id: str) -> dict | None:
        return await self.first("listAccounts", "account", id=account_id)

    async def account_named(self, name: str, domain_id: str) -> dict | None:
        return await self.first("listAccounts", "account", name=name, domainid=domain_id)

    async def domain(self, domain_id: str) -> dict | None:
        return await self.first("listDomains", "domain", id=domain_id)

    async def job_vm(self, job_id: str) -> dict | None:
        """The VM in a finished job's result (deployVirtualMachine, startVirtualMachine); None for a
        job that failed, is still running, is unknown or holds no VM."""
        try:
            job = await self.call("queryAsyncJobResult", jobid=job_id)
        except ApiError as e:
            if e.code == NOT_FOUND:
                return None
            raise
        result = job.get("jobresult") if job.get("jobstatus") == JOB_DONE else None
        vm = result.get("virtualmachine") if isinstance(result, dict) else None
        return vm if isinstance(vm, dict) else None
