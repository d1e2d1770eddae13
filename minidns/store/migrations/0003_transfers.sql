-- minidns schema 3: what zone transfers and NOTIFY need from the database — TSIG keys, each
-- zone's own secondaries and transfer access, and how far each secondary has followed.

CREATE TABLE tsig_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL UNIQUE,      -- absolute, lowercase (the key name on the wire)
    algorithm    text NOT NULL,             -- hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha1, hmac-md5…
    secret       text NOT NULL,             -- base64; never logged, never listed
    scope        text NOT NULL DEFAULT 'POOL' CHECK (scope IN ('POOL', 'ZONE')),  -- as Designate has it
    resource_id  uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz
);

-- NULL: the server's configured default; otherwise the zone's own list of prefixes and "key:NAME".
ALTER TABLE zones ADD COLUMN allow_transfer text[];

CREATE TABLE zone_secondaries (
    zone_id   uuid NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    address   inet NOT NULL,
    port      integer NOT NULL DEFAULT 53 CHECK (port BETWEEN 1 AND 65535),
    key_name  text REFERENCES tsig_keys (name) ON DELETE RESTRICT,  -- signs NOTIFY; allows transfer
    PRIMARY KEY (zone_id, address, port)
);

CREATE TABLE secondary_status (
    zone_id     uuid NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    secondary   text NOT NULL,             -- address#port
    target      bigint NOT NULL,           -- the zone serial being waited for
    serial      bigint,                    -- the serial last seen there
    state       text NOT NULL,             -- PENDING, OK, ERROR
    seen_at     timestamptz,               -- when it was seen to have the target
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (zone_id, secondary)
);
