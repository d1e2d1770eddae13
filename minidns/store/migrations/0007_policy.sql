-- minidns schema 7: the rules zones are created under, as Designate has them — the TLDs zones may
-- be made in, name patterns only an admin may use, per-project quota overrides — and the floating
-- IPs each project holds, whose PTR records the project may set (/v2/reverse/floatingips).

CREATE TABLE tlds (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL UNIQUE,      -- lowercase, no trailing dot: "com", "co.uk"
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz
);

CREATE TABLE blacklists (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pattern      text NOT NULL UNIQUE,      -- a Python regular expression, searched in the zone name
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz
);

-- Only overrides are stored; a resource without a row has the default (store/policy.py).
CREATE TABLE quotas (
    project_id   text NOT NULL,
    resource     text NOT NULL CHECK (resource IN ('zones', 'zone_recordsets', 'zone_records',
                                                    'recordset_records', 'api_export_size')),
    hard_limit   integer NOT NULL CHECK (hard_limit >= -1),   -- -1: unlimited
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz,
    PRIMARY KEY (project_id, resource)
);

CREATE TABLE floatingips (
    id           uuid NOT NULL,             -- Neutron's floating IP id
    region       text NOT NULL,
    address      inet NOT NULL,
    project_id   text NOT NULL,             -- the project holding the address
    ptrdname     text,                      -- the PTR set through the API, absolute; NULL: none
    description  text,
    ttl          integer CHECK (ttl BETWEEN 1 AND 2147483647),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz,
    PRIMARY KEY (region, id)
);
CREATE INDEX floatingips_project ON floatingips (project_id);
CREATE UNIQUE INDEX floatingips_region_address ON floatingips (region, address);
