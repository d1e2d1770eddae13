-- minidns schema 1: zones, their RRsets, and the per-zone change log.
-- Every row here is written by the one write path (minidns/store/writer.py).

CREATE TABLE zones (
    id               uuid PRIMARY KEY,
    name             text NOT NULL UNIQUE,          -- absolute, lowercase, with the trailing dot
    project_id       text NOT NULL DEFAULT '',      -- the tenant owning the zone
    email            text NOT NULL,                 -- the SOA RNAME as a mailbox (RFC 1035 §3.3.13)
    mname            text NOT NULL,                 -- the SOA MNAME
    ttl              integer NOT NULL CHECK (ttl BETWEEN 0 AND 2147483647),  -- default TTL, and the SOA's
    refresh          integer NOT NULL CHECK (refresh >= 0),
    retry            integer NOT NULL CHECK (retry >= 0),
    expire           integer NOT NULL CHECK (expire >= 0),
    minimum          integer NOT NULL CHECK (minimum >= 0),   -- negative-caching TTL (RFC 2308 §4)
    serial           bigint NOT NULL CHECK (serial BETWEEN 0 AND 4294967295),
    serial_policy    text NOT NULL DEFAULT 'increment' CHECK (serial_policy IN ('increment', 'unixtime', 'date')),
    status           text NOT NULL DEFAULT 'ACTIVE',   -- PENDING / ACTIVE / ERROR (propagation, later)
    action           text NOT NULL DEFAULT 'NONE',     -- CREATE / UPDATE / DELETE / NONE
    type             text NOT NULL DEFAULT 'PRIMARY',
    description      text,
    attributes       jsonb NOT NULL DEFAULT '{}',
    log_keep_count   integer CHECK (log_keep_count >= 1),     -- change-log retention; NULL = the default
    log_keep_seconds integer CHECK (log_keep_seconds >= 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz
);

CREATE TABLE rrsets (
    id                     uuid PRIMARY KEY,
    zone_id                uuid NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    name                   text NOT NULL,     -- owner, absolute, lowercase
    owner                  bytea NOT NULL,    -- the same owner in lowercase wire form
    type                   integer NOT NULL CHECK (type BETWEEN 1 AND 65535),
    ttl                    integer NOT NULL CHECK (ttl BETWEEN 0 AND 2147483647),
    records                text[] NOT NULL,   -- each record's data in presentation form, absolute names
    -- The same records as the server holds them: TYPE, TTL, RDLENGTH, RDATA each
    -- (RFC 1035 §3.2.1 without NAME and CLASS), so loading a zone needs no parsing.
    wire                   bytea NOT NULL,
    description            text,
    managed                boolean NOT NULL DEFAULT false,  -- made by an event, not by hand
    managed_source         text,              -- the event source / plugin that made it
    managed_resource_type  text,
    managed_resource_id    text,
    managed_tenant_id      text,
    managed_extra          jsonb,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz,
    UNIQUE (zone_id, owner, type)
);
CREATE INDEX rrsets_managed_resource ON rrsets (managed_resource_type, managed_resource_id) WHERE managed;

CREATE TABLE zone_changes (
    seq          bigserial PRIMARY KEY,
    zone_id      uuid NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    serial_from  bigint,              -- NULL for the change that created the zone
    serial_to    bigint NOT NULL,
    -- RRs removed and added, uncompressed wire RRs (RFC 1035 §4.1.3), SOA first in each once the
    -- zone exists: the difference sequence of RFC 1995 §4.
    removed      bytea NOT NULL,
    added        bytea NOT NULL,
    source       text NOT NULL,       -- what made the change: cli, import, api, event:…
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX zone_changes_zone_seq ON zone_changes (zone_id, seq);
