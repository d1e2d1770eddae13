-- minidns schema 6: event ingest (POST /v1/events). Each event is recorded once, by its message id,
-- in the same transaction as the records it changes (minidns/store/events.py); what the sink knows
-- of each cloud resource (an instance's fixed IPs and name, what a floating IP points at, a
-- deletion seen before its creation) is kept beside it.

CREATE TABLE events (
    message_id    text PRIMARY KEY,
    source        text NOT NULL,              -- nova, neutron, cloudstack, unknown
    event_type    text NOT NULL,
    publisher_id  text,
    status        text NOT NULL CHECK (status IN ('applied', 'ignored', 'failed')),
    reason        text,                       -- why ignored or failed; notes for applied ones
    changes       jsonb NOT NULL DEFAULT '[]',  -- [{op, zone, name, type, records}] this event made
    event         jsonb,                      -- the notification as received (unwrapped)
    event_time    timestamptz,                -- the notification's own timestamp
    attempts      integer NOT NULL DEFAULT 1,  -- a failed event is tried again when sent again
    received_at   timestamptz NOT NULL DEFAULT now(),
    applied_at    timestamptz                 -- when its effects committed (applied only)
);
CREATE INDEX events_received ON events (received_at);
CREATE INDEX events_failed ON events (received_at) WHERE status = 'failed';

-- One row per cloud resource an event spoke of. state 'deleted' is a tombstone: a create that
-- arrives after the delete is ignored. data holds what naming needs later: for a Nova instance
-- {hostname, display_name, project, addresses}, for a floating IP {address, fixed_ip, port_id,
-- instance_id}, for a CloudStack VM {name, group, account, zone, addresses}.
CREATE TABLE event_resources (
    source          text NOT NULL,
    resource_type   text NOT NULL,
    resource_id     text NOT NULL,
    state           text NOT NULL CHECK (state IN ('live', 'deleted')),
    tenant_id       text,
    data            jsonb NOT NULL DEFAULT '{}',
    event_time      timestamptz,              -- timestamp of the newest event applied to it
    last_message_id text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, resource_type, resource_id)
);
CREATE INDEX event_resources_addresses ON event_resources USING gin ((data -> 'addresses')) WHERE state = 'live';
CREATE INDEX rrsets_managed_source ON rrsets (managed_source, managed_resource_type) WHERE managed;
