-- minidns schema 2: RRset ids made by the database, so a bulk COPY (zone import) need not
-- send one per row.
ALTER TABLE rrsets ALTER COLUMN id SET DEFAULT gen_random_uuid();
