-- minidns schema 10: DNSSEC key rollovers in progress (store/rollover.py, RFC 7583). One row per zone
-- and kind while a rollover runs, so any process (`minidns serve`'s scheduler, `minidns dnssec
-- advance` from cron) can take the next step and a restart loses nothing; the row goes when the old
-- key does (or with the zone, or its keys when signing is disabled).

CREATE TABLE dnssec_rollovers (
    zone_id     uuid NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    -- 'zsk': ZSK pre-publication (RFC 7583 §3.2.1); 'ksk': the KSK or, in a CSK zone, the CSK, by
    -- double-RRset with CDS/CDNSKEY (§3.3.3, §3.4) and the operator's ds-seen
    kind        text NOT NULL CHECK (kind IN ('zsk', 'ksk')),
    -- 'published': the new key is in the DNSKEY RRset (a key-signing key co-signs it);
    -- 'retired': the new key signs, the old one stays published until its signatures leave caches
    phase       text NOT NULL CHECK (phase IN ('published', 'retired')),
    old_key     uuid NOT NULL REFERENCES dnssec_keys (id) ON DELETE CASCADE,
    new_key     uuid NOT NULL REFERENCES dnssec_keys (id) ON DELETE CASCADE,
    started_at  timestamptz NOT NULL,
    phase_at    timestamptz NOT NULL,        -- when the current phase began
    due_at      timestamptz NOT NULL,        -- the next step is not taken before this (TTLs + margin)
    ds_seen_at  timestamptz,                 -- 'ksk': the operator confirmed the parent's new DS
    PRIMARY KEY (zone_id, kind)
);
CREATE INDEX dnssec_rollovers_due ON dnssec_rollovers (due_at);
