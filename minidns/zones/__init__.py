"""Zone data: immutable snapshots, zone-file loading, lookup and zone selection. Imports only wire."""
