"""What decides what to write: zones and pools, recordsets, policy and quotas, floating IPs, tasks,
DNSSEC keys and rollover, transfer access. Doors (HTTP, CLI, zone files) call these; they write
only through the store's unit of work (minidns/store/writer.py)."""
