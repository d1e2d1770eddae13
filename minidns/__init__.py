"""minidns: an authoritative DNS server answering from immutable in-memory zone snapshots."""

__version__ = "0.1.0"
