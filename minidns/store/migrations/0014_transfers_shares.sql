-- minidns schema 14: moving a zone to another project and sharing it with others, as Designate
-- has them — zone transfer requests and their accepts (/v2/zones/tasks/transfer_requests,
-- transfer_accepts), zone shares (/v2/zones/{id}/shares), and which project made each RRset
-- (a project a zone is shared with manages the RRsets it made there, and only those).

CREATE TABLE zone_transfer_requests (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    zone_id            uuid NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    project_id         text NOT NULL,        -- the project offering the zone (its owner then)
    target_project_id  text,                 -- the project that may accept; NULL: any holding the key
    key                text NOT NULL,        -- shown to the offering project, given to the accepting one
    description        text,
    status             text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'COMPLETE', 'ERROR')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz
);
-- One open offer per zone (Designate's DuplicateZoneTransferRequest).
CREATE UNIQUE INDEX zone_transfer_requests_active ON zone_transfer_requests (zone_id) WHERE status = 'ACTIVE';
CREATE INDEX zone_transfer_requests_project ON zone_transfer_requests (project_id, created_at, id);
CREATE INDEX zone_transfer_requests_target ON zone_transfer_requests (target_project_id, created_at, id);

CREATE TABLE zone_transfer_accepts (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    zone_transfer_request_id  uuid NOT NULL,   -- no foreign key: the record outlives the zone, as in Designate
    zone_id                   uuid NOT NULL,
    project_id                text NOT NULL,   -- the accepting project, the zone's owner since
    key                       text NOT NULL,
    status                    text NOT NULL CHECK (status IN ('COMPLETE', 'ERROR')),
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz
);
CREATE INDEX zone_transfer_accepts_project ON zone_transfer_accepts (project_id, created_at, id);

CREATE TABLE shared_zones (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    zone_id            uuid NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    project_id         text NOT NULL,        -- the project that shared it (the zone's owner)
    target_project_id  text NOT NULL,        -- the project it is shared with
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz,
    UNIQUE (zone_id, target_project_id)
);
CREATE INDEX shared_zones_target ON shared_zones (target_project_id);

-- NULL: the zone's owner made it (every RRset before this migration, and every one the sink makes).
ALTER TABLE rrsets ADD COLUMN project_id text;
