"""The DNS listeners (server/listeners.py) on real sockets: UDP and TCP on one address answer from
the engine, port 0 resolves to a port free for both, and closing stops both."""

import socket

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from minidns.server.config import load_config
from minidns.answer.engine import Engine, EngineSettings
from minidns.server.listeners import Listeners
from minidns.answer.rrl import RateLimiter
from minidns.server.transport import QueryLog, TcpLimits
from minidns.zones.loader import load_zone_text

ZONE = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.80\n"


def _listeners(rrl=None, **config) -> Listeners:
    engine = Engine(EngineSettings())
    engine.set_zones([load_zone_text(ZONE, "listen.test.")])
    engine.query_log = QueryLog(1)  # as the server sets it: every query logged when the log is on
    return Listeners(load_config(None, config), engine, TcpLimits(16, 5.0, 8, 5.0), rrl, reuse_port=False)


async def _ask(port: int, tcp: bool) -> dns.message.Message:
    q = dns.message.make_query("www.listen.test.", "A")
    how = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
    return await how(q, "127.0.0.1", port=port, timeout=5)


@pytest.mark.parametrize("rrl, query_log", [(None, False), (None, True), (RateLimiter(1000, 1000, 1000), False)])
async def test_udp_and_tcp_on_one_port_answer_from_the_engine(rrl, query_log):
    listeners = _listeners(rrl, query_log=query_log)
    await listeners.listen("127.0.0.1:0")
    try:
        (bound,) = listeners.bound
        port = int(bound.rsplit(":", 1)[1])
        assert port != 0
        for tcp in (False, True):
            r = await _ask(port, tcp)
            assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].address == "192.0.2.80"
    finally:
        await listeners.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


async def test_an_address_in_use_is_an_error():
    first = _listeners()
    await first.listen("127.0.0.1:0")
    try:
        with pytest.raises(OSError):
            await _listeners().listen(first.bound[0])
    finally:
        await first.close()
