-- minidns schema 17: who may change what by RFC 2136 UPDATE — the per-key grant table
-- (xfr/grants.py; written by services/update_grants.py, read by store/transfer_settings.py). The
-- servers read the configured grants first, then these by position: the first that matches decides.
-- Key names are not a foreign key: a grant may name a key of the configuration file.

CREATE TABLE update_grants (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    position     integer NOT NULL CHECK (position > 0),  -- 1, 2, 3…: the order they are read in
    key_name     text NOT NULL,                  -- absolute, lowercase
    zone         text,                           -- absolute, lowercase; NULL: every zone
    match        text NOT NULL CHECK (match IN ('name', 'subdomain', 'wildcard', 'self', 'selfsub', 'zone')),
    pattern      text,                           -- for name, subdomain, wildcard
    types        text[] NOT NULL DEFAULT '{}',   -- type names; empty: every type
    action       text NOT NULL DEFAULT 'grant' CHECK (action IN ('grant', 'deny')),
    managed      boolean NOT NULL DEFAULT false, -- may change the RRsets the event sink made
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (position) DEFERRABLE INITIALLY DEFERRED  -- positions move by one statement on insert and delete
);
