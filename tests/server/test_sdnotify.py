"""The systemd notification protocol (server/sdnotify.py) against a real datagram socket."""

import os
import socket

import pytest

from minidns.server.sdnotify import SystemdNotifier, child_environ


def test_state_lines_reach_the_socket_systemd_gave(tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
        assert notifier.enabled and notifier.send("READY=1", "STATUS=serving")
        assert s.recv(100) == b"READY=1\nSTATUS=serving"


def test_an_abstract_socket_name_is_taken_as_linux_writes_it():
    assert SystemdNotifier({"NOTIFY_SOCKET": "@minidns-test"}).addr == "\0minidns-test"


def test_without_systemd_nothing_is_sent_and_a_gone_socket_is_only_logged(tmp_path):
    assert not SystemdNotifier({}).send("READY=1")
    assert not SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody")}).send("READY=1")


@pytest.mark.parametrize("environ, seconds", [
    ({"WATCHDOG_USEC": "30000000"}, 15.0),  # pings at half of what systemd allows
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])  # fmt: skip
def test_the_watchdog_interval(environ, seconds):
    assert SystemdNotifier(environ).watchdog == seconds


def test_workers_do_not_inherit_systemds_variables():
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1", "WATCHDOG_PID": "2", "PATH": "/usr/bin"}
    assert child_environ(env) == {"PATH": "/usr/bin"}
