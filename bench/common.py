"""Helpers shared by bench/qps.py and bench/memory.py: paths, a tiny DNS client, process handling.

Nothing here imports minidns: the benchmarks drive the server as a separate process, the way a user
would, so they measure exactly what `python -m minidns serve` does.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
OUT = os.path.join(BENCH, "out")


def peerbench_path() -> str:
    path = os.environ.get("PEERBENCH") or os.path.join(ROOT, "..", "shared", "tools", "peerbench.py")
    path = os.path.normpath(path)
    if not os.path.exists(path):
        sys.exit(f"peerbench.py not found at {path} (set $PEERBENCH)")
    return path


# --- a minimal DNS client (UDP, no EDNS) -------------------------------------------------------

def _qname(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def _skip_name(msg: bytes, i: int) -> int:
    while True:
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1 + n


def query(host: str, port: int, name: str, qtype: int = 1, timeout: float = 1.0):
    """One UDP query. Returns (rcode, [(type, rdata bytes) of the answer section]) or None when
    nothing (or nothing matching) came back in time."""
    qid = random.randrange(65536)
    msg = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + _qname(name) + struct.pack("!HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        s.send(msg)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = s.recv(65535)
            if len(reply) >= 12 and struct.unpack("!H", reply[:2])[0] == qid:
                break
        else:
            return None
    except OSError:  # timeout, or ICMP port unreachable while the server is not bound yet
        return None
    finally:
        s.close()
    flags, qd, an = struct.unpack("!HHH", reply[2:8])
    i = 12
    for _ in range(qd):
        i = _skip_name(reply, i) + 4
    answers = []
    for _ in range(an):
        i = _skip_name(reply, i)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", reply[i:i + 10])
        answers.append((rtype, reply[i + 10:i + 10 + rdlen]))
        i += 10 + rdlen
    return flags & 0xF, answers


def answers_a(host: str, port: int, name: str, address: str) -> bool:
    r = query(host, port, name, 1)
    return bool(r) and r[0] == 0 and (1, socket.inet_aton(address)) in r[1]


def answers_soa(host: str, port: int, name: str) -> bool:
    r = query(host, port, name, 6)
    return bool(r) and r[0] == 0 and any(t == 6 for t, _ in r[1])


# --- ports and processes -----------------------------------------------------------------------

def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing is bound to host:port, UDP or TCP."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port() -> int:
    """A port free on loopback for both UDP and TCP (picked by the kernel)."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port_free(port):
            return port
    raise RuntimeError("no free port")


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, … from /proc/PID/status, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key.startswith("Vm") or key.startswith("Rss"):
                out[key] = int(rest.split()[0])
    return out


def proc_pss(pid: int) -> int | None:
    """Proportional set size in KiB (pages shared with other processes count by their share)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The child processes of `pid` (a `minidns serve --workers N`'s workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def session_pids(sid: int) -> list[int]:
    """Every live process in session sid (a server started with start_new_session=True and
    everything it forked)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # field 6 of stat is the session id
            pids.append(int(entry))
    return sorted(pids)


def proc_name(pid: int) -> str:
    """The process's own name (comm: NSD names its processes "nsd: main", "nsd: xfrd", …)."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM to the process group of a server we started (start_new_session=True), then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # NSD's children may outlive the first process for a moment
    deadline = time.monotonic() + timeout
    while session_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if session_pids(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)


def minidns_argv(zone_spec: str, listen: str, cpu: str | None, extra: tuple[str, ...] = ()) -> list[str]:
    argv = [sys.executable, "-m", "minidns", "serve", "--zone-file", zone_spec, "--listen", listen, *extra]
    return (["taskset", "-c", cpu] if cpu is not None else []) + argv


def start_minidns(zone_spec: str, listen: str, log_path: str, cpu: str | None = "0",
                  extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """Start this checkout's minidns (cwd and PYTHONPATH are the repository root, so the working
    tree is what runs, not an installed copy). taskset execs, so the pid is python's."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(minidns_argv(zone_spec, listen, cpu, extra), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(log_path, "w"), start_new_session=True)


LOADED = re.compile(r"loaded zone (\S+) serial \d+ \((\d+) names\) from \S+ in ([0-9.]+)s")


def read_log(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"
