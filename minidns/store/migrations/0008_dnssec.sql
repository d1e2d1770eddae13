-- minidns schema 8: DNSSEC keys (store/dnssec.py). A zone with `dnssec` set is served signed with its
-- active keys; each private key is kept sealed (AES-256-GCM) under the master key, which is never
-- stored here: only a check value sealed under it, so a wrong master key is told at start.

ALTER TABLE zones ADD COLUMN dnssec boolean NOT NULL DEFAULT false;

CREATE TABLE dnssec_keys (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    zone_id         uuid NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('csk', 'ksk', 'zsk')),
    algorithm       integer NOT NULL CHECK (algorithm BETWEEN 1 AND 255),   -- RFC 8624 numbers: 8, 13, 15
    key_tag         integer NOT NULL CHECK (key_tag BETWEEN 0 AND 65535),   -- RFC 4034 Appendix B
    public_key      bytea NOT NULL,           -- the DNSKEY public key field (RFC 4034 §2.1.4)
    -- nonce | AES-256-GCM(PKCS#8 DER) | tag, the zone id and key id as associated data
    private_sealed  bytea NOT NULL,
    -- Rollovers (RFC 7583) add 'published' (in the DNSKEY RRset, not signing) and 'retired'.
    state           text NOT NULL DEFAULT 'active' CHECK (state IN ('published', 'active', 'retired')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    activated_at    timestamptz,
    retired_at      timestamptz
);
CREATE INDEX dnssec_keys_zone ON dnssec_keys (zone_id);

-- One row: a known text sealed under the master key the first time keys were stored.
CREATE TABLE dnssec_master (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    check_sealed    bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
