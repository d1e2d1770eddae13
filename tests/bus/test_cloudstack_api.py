"""The CloudStack API client (minidns/bus/cloudstack_api.py): its signature against the example of
CloudStack's own documentation and against a stand-in that checks it as the management server does;
what it makes of each kind of answer (the item, nothing for an id CloudStack does not know,
Unreachable or Refused to wait out, ApiError)."""

import time

import pytest
from cloudstack_standin import API_KEY, SECRET_KEY, CloudStackStandIn, expected_signature, java_url_encode, recorded

from minidns.bus.cloudstack_api import ApiError, CloudStackAPI, Refused, answer, cs_encode, signature, signed_query
from minidns.bus.message import Unreachable

VM = "8a1a4f5c-5cf0-4b4f-9d59-5cfb1d1e0a11"
ACCOUNT = "e2c7ad16-7b1a-4a51-9f1b-3f3b8a9e5d70"
DOMAIN = "0b8c3fa4-0e3c-11ee-8b0c-0242ac120002"
JOB = "d3c2b1a0-0000-4000-8000-00000000000a"


def test_the_signature_of_the_documented_example():
    # CloudStack Developer's Guide, "How to sign an API call with Python" (apache/cloudstack
    # docs/en-US/signing-api-calls-python.xml, CLOUDSTACK-2338): listUsers, response=json, with
    # the guide's key pair, is signed TTpdDq/7j/J58XCRHomKoQXEQds=.
    params = {"command": "listUsers", "response": "json", "apikey": API_KEY}
    assert signature(params, SECRET_KEY) == "TTpdDq/7j/J58XCRHomKoQXEQds="
    assert expected_signature({**params, "signature": "ignored"}, SECRET_KEY) == "TTpdDq/7j/J58XCRHomKoQXEQds="


@pytest.mark.parametrize("value", ["plain-._*", "a b", "a+b", "~home", "x/y=z&w", "zoné ü", "100%", "snow☃"])
def test_values_are_encoded_as_javas_url_encoder_does(value):
    assert cs_encode(value) == java_url_encode(value).replace("+", "%20")


def test_a_signed_query_carries_everything_the_server_checks():
    query = signed_query("listVirtualMachines", {"id": VM, "listall": "true"}, API_KEY, SECRET_KEY, now=1_700_000_000)
    params = dict(part.split("=", 1) for part in query.split("&"))
    assert params["command"] == "listVirtualMachines" and params["response"] == "json" and params["apiKey"] == API_KEY
    assert params["signatureVersion"] == "3" and params["expires"] == "2023-11-14T22%3A23%3A20%2B0000"  # ten minutes on
    # names sort as Java's String.compareTo does: "apiKey" and "signatureVersion" keep their capitals until the
    # whole string is lower-cased
    plain = {"command": "listVirtualMachines", "id": VM, "listall": "true", "apiKey": API_KEY, "response": "json",
             "signatureVersion": "3", "expires": "2023-11-14T22:23:20+0000"}  # fmt: skip
    assert params["signature"] == cs_encode(expected_signature(plain, SECRET_KEY))


ERRORS = [
    (401, b'{"listvirtualmachinesresponse":{"uuidList":[],"errorcode":401,"errortext":"unable to verify user credentials'
          b' and/or request signature"}}', Refused),
    (432, b'{"listvirtualmachinesresponse":{"uuidList":[],"errorcode":432,"errortext":"not available"}}', Refused),
    (429, b'{"listvirtualmachinesresponse":{"uuidList":[],"errorcode":429,"errortext":"limit"}}', Refused),
    (530, b'{"listvirtualmachinesresponse":{"uuidList":[],"errorcode":530,"cserrorcode":4250,"errortext":"db"}}', Unreachable),
    (503, b"<html>Service Unavailable</html>", Unreachable),
    (200, b"<html>a proxy's login page</html>", Unreachable),
    (431, b'{"listvirtualmachinesresponse":{"uuidList":[],"errorcode":431,"cserrorcode":4350,"errortext":"no such"}}', ApiError),
    (430, b'{"errorresponse":{"uuidList":[],"errorcode":430,"errortext":"malformed"}}', ApiError),
]  # fmt: skip


@pytest.mark.parametrize("status, body, raised", ERRORS)
def test_what_each_answer_means(status, body, raised):
    with pytest.raises(raised):
        answer("listVirtualMachines", status, body)
    assert answer("listVirtualMachines", 200, b'{"listvirtualmachinesresponse":{}}') == {}


@pytest.fixture(scope="module")
def standin():
    s = CloudStackStandIn()
    s.start()
    yield s
    s.close()


async def test_the_client_against_a_server_that_checks_signatures(standin):
    api = CloudStackAPI(standin.url, API_KEY, SECRET_KEY, timeout=2, retry_delay=0.05)
    try:
        assert await api.virtual_machine(VM) == recorded("listVirtualMachines")["virtualmachine"][0]
        assert (await api.account(ACCOUNT))["networkdomain"] == "acct.test"
        assert (await api.domain(DOMAIN))["networkdomain"] == "dom.test"
        assert (await api.job_vm(JOB))["id"] == VM
        assert (await api.account_named("shop", DOMAIN))["id"] == ACCOUNT
        # a value with every kind of octet is signed as the server encodes it: not refused, just not found
        assert await api.account_named("shop ~*+/é☃ 100%", DOMAIN) is None
        assert await api.virtual_machine("0d0d0d0d-0000-4000-8000-000000000000") is None  # 431: gone
        assert await api.job_vm("0d0d0d0d-0000-4000-8000-000000000000") is None
        assert standin.refused == []
    finally:
        await api.close()


async def test_refused_keys_expired_requests_and_a_server_that_is_down(standin):
    refusals = [CloudStackAPI(standin.url, API_KEY, "not the secret"),
                CloudStackAPI(standin.url, "not the key", SECRET_KEY),
                CloudStackAPI(standin.url, API_KEY, SECRET_KEY, clock=lambda: time.time() - 3600)]  # fmt: skip
    for api in refusals:
        with pytest.raises(Refused, match="401: unable to verify user credentials and/or request signature"):
            await api.virtual_machine(VM)
        await api.close()
    assert standin.refused == ["signature is not equal to the computed signature", "apiKey does not map to a valid user",
                               "request expired"]  # fmt: skip
    standin.refused.clear()
    api = CloudStackAPI(standin.url, API_KEY, SECRET_KEY, timeout=1, attempts=2, retry_delay=0.05)
    with pytest.raises(Refused, match="432"):
        await api.call("deployVirtualMachine")
    standin.stop()
    try:
        with pytest.raises(Unreachable, match=r"CloudStack API at http://127\.0\.0\.1:\d+: .*Connect"):
            await api.virtual_machine(VM)
    finally:
        standin.start()
    assert (await api.virtual_machine(VM))["name"] == "app1"
    await api.close()
