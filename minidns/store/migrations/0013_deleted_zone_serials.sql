-- minidns schema 13: the last serial of each deleted zone. A zone created again under the same name
-- starts above it (RFC 1982), so secondaries that still hold the deleted zone's data see a newer
-- serial and transfer the new zone (RFC 1996 §4.7, RFC 1995 §2) instead of keeping the old one.
CREATE TABLE deleted_zone_serials (
    name        text PRIMARY KEY,
    serial      bigint NOT NULL CHECK (serial BETWEEN 0 AND 4294967295),
    deleted_at  timestamptz NOT NULL DEFAULT now()
);
