"""oslo.messaging transport URLs as nova.conf holds them (minidns/bus/transport_url.py): several hosts
with their own credentials, vhost, TLS by scheme or ssl=1 with oslo's option names, IPv6, errors."""

import ssl

import pytest

from minidns.bus.transport_url import Broker, InvalidTransportURL, Tls, brokers


def test_hosts_credentials_and_vhost_as_oslo_reads_them():
    found = brokers(["rabbit://nova:s%40cret@mq1:5673,nova2:pw2@mq2/openstack", "amqp://mq3"])
    assert found == [
        Broker("mq1", 5673, "nova", "s@cret", "openstack"),
        Broker("mq2", 5672, "nova2", "pw2", "openstack"),
        Broker("mq3", 5672, "guest", "guest", "/"),
    ]
    assert brokers(["rabbit://u:p@[2001:db8::5]:5680/"]) == [Broker("2001:db8::5", 5680, "u", "p", "/")]
    assert found[0].label() == "mq1:5673" and brokers(["rabbit://[::1]"])[0].label() == "[::1]:5672"
    assert "s@cret" not in repr(found[0].label())
    assert found[1].connect_args() == {"host": "mq2", "port": 5672, "login": "nova2", "password": "pw2", "virtualhost": "openstack"}


def test_tls_by_scheme_or_ssl_option(tmp_path):
    [b] = brokers(["rabbits://u:p@mq1/"])
    assert (b.port, b.tls) == (5671, Tls())
    [b] = brokers(["rabbit://u:p@mq1:5671/?ssl=true&ssl_ca_file=/etc/ssl/ca.pem&ssl_cert_file=/c.pem&ssl_key_file=/k.pem"])
    assert b.tls == Tls("/etc/ssl/ca.pem", "/c.pem", "/k.pem")
    assert brokers(["rabbit://u:p@mq1/?ssl=0"])[0].tls is None
    ctx = Tls().context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and not ctx.check_hostname
    args = brokers(["amqps://u:p@mq1/"])[0].connect_args()
    assert args["ssl"] is True and isinstance(args["ssl_context"], ssl.SSLContext)


@pytest.mark.parametrize("url, says", [
    ("kafka://k1:9092", "kafka scheme"), ("rabbit://u:p@mq1:56x2/", "not a number"), ("rabbit://u:p@:5672/", "no host"),
    ("rabbit:///", "name no host"),
])  # fmt: skip
def test_what_is_not_a_transport_url_says_why(url, says):
    with pytest.raises(InvalidTransportURL, match=says):
        brokers([url])
