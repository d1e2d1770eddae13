"""A stand-in for CloudStack's API (the one part of a CloudStack cloud that cannot run here): an
aiohttp app on loopback, in a thread of its own so that a `minidns serve` process and the test's own
event loop can both ask it. It checks each request's signature as the management server does
(ApiServer.verifyRequest: the parameters but `signature` sorted by name, each `name=value` with the
value encoded by java.net.URLEncoder and "+" made "%20", joined with "&", lower-cased, HMAC-SHA1
with the secret key, base64; signatureVersion 3 needs an `expires` still to come) and refuses a
missing or wrong one with CloudStack's 401 answer. It answers listVirtualMachines, listAccounts,
listDomains (by id, or an account by name and domain) and queryAsyncJobResult from the recorded
answers in cloudstack_api/, and 431 for an id it does not know, as CloudStack does (or the error a
test puts in `errors` for a command). stop() and
start() again (same port) play a management server that is down for a while."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import hashlib
import hmac
import json
import threading
from collections import Counter
from pathlib import Path

from aiohttp import web
from rabbit import free_port

RECORDED = Path(__file__).parent / "cloudstack_api"
API_KEY = "plgWJfZK4gyS3mOMTVmjUVg-X-jlWlnfaUJ9GAbBbf9EdM-kAYMmAiLqzzq1ElZLYq_u38zCm0bewzGUdP66mg"
SECRET_KEY = "VDaACYb0LV9eNjTetIOElcVQkvJck_J_QljX_FcHRj87ZKiy0z0ty0ZsYBkoXkY9b7eq1EhwJaw7FF3akA3KBQ"
BAD_SIGNATURE = "unable to verify user credentials and/or request signature"
JAVA_SAFE = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*_")
LISTS = {"listVirtualMachines": "virtualmachine", "listAccounts": "account", "listDomains": "domain"}


def recorded(command: str) -> dict:
    """The inner object of a recorded answer."""
    return json.loads((RECORDED / f"{command}.json").read_text())[f"{command.lower()}response"]


def java_url_encode(value: str) -> str:
    """java.net.URLEncoder.encode(value, "UTF-8"): letters, digits and . - * _ kept, space as "+",
    any other octet of the UTF-8 form as %XX."""
    return "".join(chr(b) if b in JAVA_SAFE else "+" if b == 0x20 else f"%{b:02X}" for b in value.encode())


def expected_signature(params: dict[str, str], secret: str) -> str:
    unsigned = "&".join(f"{name}={java_url_encode(params[name]).replace('+', '%20')}"
                        for name in sorted(params) if name.lower() != "signature")  # fmt: skip
    return base64.b64encode(hmac.new(secret.encode(), unsigned.lower().encode(), hashlib.sha1).digest()).decode()


def error(command: str, code: int, text: str, cserrorcode: int | None = None) -> web.Response:
    body = {"uuidList": [], "errorcode": code, **({"cserrorcode": cserrorcode} if cserrorcode else {}), "errortext": text}
    return web.json_response({f"{command.lower()}response": body}, status=code, content_type="application/json")


class CloudStackStandIn:
    """The stand-in's data (vms, accounts, domains, jobs by id; tests change them freely), what it
    was asked (`calls`: command → count; `asked`: each command with its id) and its server."""

    def __init__(self, api_key: str = API_KEY, secret_key: str = SECRET_KEY):
        self.api_key, self.secret_key = api_key, secret_key
        self.vms = {v["id"]: v for v in recorded("listVirtualMachines")["virtualmachine"]}
        self.accounts = {a["id"]: a for a in recorded("listAccounts")["account"]}
        self.domains = {d["id"]: d for d in recorded("listDomains")["domain"]}
        job = recorded("queryAsyncJobResult")
        self.jobs = {job["jobid"]: job}
        self.calls: Counter = Counter()
        self.asked: list[tuple[str, str]] = []  # (command, the id or job id asked for), in order
        self.refused: list[str] = []  # why each refused request was refused
        self.errors: dict[str, tuple[int, str]] = {}  # command → (errorcode, errortext) answered instead
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/client/api"

    def add_vm(self, vm_id: str, name: str, addresses: tuple[str, str], **changes) -> dict:
        """A VM like the recorded one, with its own id, name and NIC addresses."""
        vm = copy.deepcopy(next(iter(recorded("listVirtualMachines")["virtualmachine"])))
        vm.update(id=vm_id, name=name, displayname=name, **changes)
        vm["nic"][0].update(ipaddress=addresses[0], ip6address=addresses[1])
        self.vms[vm_id] = vm
        return vm

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self.serve(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.runner = None

    def close(self) -> None:
        if self.runner is not None:
            self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)

    async def serve(self) -> None:
        app = web.Application()
        app.router.add_get("/client/api", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def handle(self, request: web.Request) -> web.Response:
        params = {k: request.query.getone(k) for k in request.query}
        command = params.get("command", "")
        why = self.verify(params)
        if why:
            self.refused.append(why)
            return error(command, 401, BAD_SIGNATURE)
        self.calls[command] += 1
        self.asked.append((command, params.get("id") or params.get("jobid") or params.get("name") or ""))
        if command in self.errors:
            return error(command, *self.errors[command])
        if command == "queryAsyncJobResult":
            return self.job(params)
        if command not in LISTS:
            return error(command, 432, f"The given command '{command}' either does not exist or is not available for the user")
        return self.listing(command, params)

    def verify(self, params: dict[str, str]) -> str | None:
        """Why ApiServer.verifyRequest would refuse the request; None when it would accept it."""
        given = next((v for k, v in params.items() if k.lower() == "signature"), None)
        key = next((v for k, v in params.items() if k.lower() == "apikey"), None)
        if given is None or key is None:
            return "missing signature or apiKey"
        if key != self.api_key:
            return "apiKey does not map to a valid user"
        if params.get("signatureVersion") == "3":
            expires = params.get("expires")
            try:
                when = datetime.datetime.strptime(expires or "", "%Y-%m-%dT%H:%M:%S%z")
            except ValueError:
                return f"incorrect date format for expires: {expires!r}"
            if when < datetime.datetime.now(datetime.UTC):
                return "request expired"
        if not hmac.compare_digest(given, expected_signature(params, self.secret_key)):
            return "signature is not equal to the computed signature"
        return None

    def listing(self, command: str, params: dict[str, str]) -> web.Response:
        table = {"listVirtualMachines": self.vms, "listAccounts": self.accounts, "listDomains": self.domains}[command]
        if "id" in params:
            if params["id"] not in table:
                return error(command, 431, f"Unable to execute API command {command.lower()} due to invalid value. Invalid parameter"
                             f" id value={params['id']} due to incorrect long value format, or entity does not exist or due to"
                             " incorrect parameter annotation for the field in api cmd class.", 4350)  # fmt: skip
            items = [table[params["id"]]]
        else:
            items = [a for a in table.values() if all(a.get(k) == params[k] for k in ("name", "domainid") if k in params)]
        inner = {"count": len(items), LISTS[command]: items} if items else {}
        return web.json_response({f"{command.lower()}response": inner}, content_type="application/json")

    def job(self, params: dict[str, str]) -> web.Response:
        job = self.jobs.get(params.get("jobid", ""))
        if job is None:
            return error("queryAsyncJobResult", 431, f"Unable to execute API command queryasyncjobresult due to invalid"
                         f" value. Invalid parameter jobid value={params.get('jobid')}", 4350)  # fmt: skip
        return web.json_response({"queryasyncjobresultresponse": job}, content_type="application/json")
