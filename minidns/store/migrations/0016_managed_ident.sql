-- minidns schema 16: the RRsets a cloud resource made found by one index probe on all three parts
-- of its provenance (sink/sync.py reads them for every event). The index on (managed_source,
-- managed_resource_type) alone matched every RRset of a kind: while the table's statistics lag
-- behind a burst of events (a fresh table, before autovacuum analyzes it) the planner chose it and
-- each event read all the RRsets of its kind.
DROP INDEX IF EXISTS rrsets_managed_source;
CREATE INDEX rrsets_managed_ident ON rrsets (managed_source, managed_resource_type, managed_resource_id) WHERE managed;
