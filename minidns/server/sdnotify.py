"""The systemd notification protocol (sd_notify(3)) for `Type=notify` units: READY=1 once every
worker answers, RELOADING=1/READY=1 around a SIGHUP reload, STOPPING=1, and WATCHDOG=1 pings from
the event loop (so a stuck loop gets the service restarted). A datagram to $NOTIFY_SOCKET; nothing
happens when it is unset (not started by systemd)."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("minidns")


class SystemdNotifier:
    """Sends state lines to the socket systemd gave this process, when it gave one."""

    def __init__(self, environ=os.environ):
        addr = environ.get("NOTIFY_SOCKET") or None
        if addr is not None and addr.startswith("@"):  # an abstract socket
            addr = "\0" + addr[1:]
        self.addr = addr
        self.watchdog: float | None = None  # seconds between pings, half of what systemd allows
        usec = environ.get("WATCHDOG_USEC")
        pid = environ.get("WATCHDOG_PID")
        if usec and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog = int(usec) / 2e6

    @property
    def enabled(self) -> bool:
        return self.addr is not None

    def send(self, *lines: str) -> bool:
        if self.addr is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto("\n".join(lines).encode(), self.addr)
            return True
        except OSError as e:
            log.warning("systemd notification %r not sent: %s", lines[0], e)
            return False


def child_environ(environ=os.environ) -> dict:
    """The environment for a worker process: systemd's variables are the main process's alone
    (NotifyAccess=main)."""
    return {k: v for k, v in environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
