-- minidns schema 12: pools, as Designate has them. A pool is the set of name servers its zones are
-- served by: its NS records (written at each zone's apex, RFC 1034 §4.2.1; the first by priority
-- is the SOA MNAME), its targets (secondaries NOTIFYed for every zone of the pool and whose
-- serials decide ACTIVE), and optionally a catalog zone listing its zones (RFC 9432).
-- The default pool has Designate's default pool id; every zone belongs to a pool.

CREATE TABLE pools (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL UNIQUE,
    description  text,
    project_id   text NOT NULL DEFAULT '',
    attributes   jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz
);

CREATE TABLE pool_ns_records (
    pool_id      uuid NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    hostname     text NOT NULL,             -- absolute, lowercase, with the trailing dot
    priority     integer NOT NULL CHECK (priority >= 1),
    PRIMARY KEY (pool_id, hostname)
);

CREATE TABLE pool_targets (
    pool_id   uuid NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    address   inet NOT NULL,
    port      integer NOT NULL DEFAULT 53 CHECK (port BETWEEN 1 AND 65535),
    key_name  text REFERENCES tsig_keys (name) ON DELETE RESTRICT,  -- signs NOTIFY; allows transfer
    PRIMARY KEY (pool_id, address, port)
);

-- The NS set is filled by the servers at start (store/pools.py prepare): from the configuration
-- (pool_nameservers) or, unconfigured, the host's name; zones without apex NS are repaired then.
INSERT INTO pools (id, name, description) VALUES ('794ccc2c-d751-44fe-b57f-8894c9f5c842', 'default', 'Default Pool');

ALTER TABLE zones ADD COLUMN pool_id uuid NOT NULL DEFAULT '794ccc2c-d751-44fe-b57f-8894c9f5c842'
    REFERENCES pools (id) ON DELETE RESTRICT;
CREATE INDEX zones_pool ON zones (pool_id);
