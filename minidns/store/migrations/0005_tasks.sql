-- minidns schema 5: what the Designate-shaped API keeps besides the zone data — zone import and
-- export tasks, an object version on zones and RRsets (Designate's `version`, raised by every
-- change to the row), and whether an RRset's TTL was given or is the zone's default (Designate
-- shows `ttl: null` for those, and they follow the zone's TTL when it changes).

CREATE TABLE zone_tasks (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind        text NOT NULL CHECK (kind IN ('IMPORT', 'EXPORT')),
    project_id  text NOT NULL,
    zone_id     uuid,                      -- no foreign key: the task outlives its zone, as in Designate
    status      text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'COMPLETE', 'ERROR')),
    message     text,
    location    text,                      -- exports: designate://v2/zones/tasks/exports/<id>/export
    version     integer NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz
);
CREATE INDEX zone_tasks_project ON zone_tasks (kind, project_id, created_at, id);

ALTER TABLE zones ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE rrsets ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE rrsets ADD COLUMN ttl_default boolean NOT NULL DEFAULT false;

CREATE FUNCTION minidns_zone_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.serial, NEW.status, NEW.action, NEW.email, NEW.ttl, NEW.description, NEW.project_id)
       IS DISTINCT FROM (OLD.serial, OLD.status, OLD.action, OLD.email, OLD.ttl, OLD.description, OLD.project_id) THEN
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER zones_version BEFORE UPDATE ON zones FOR EACH ROW EXECUTE FUNCTION minidns_zone_version();

CREATE FUNCTION minidns_rrset_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.ttl, NEW.records, NEW.description, NEW.managed) IS DISTINCT FROM
       (OLD.ttl, OLD.records, OLD.description, OLD.managed) THEN
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER rrsets_version BEFORE UPDATE ON rrsets FOR EACH ROW EXECUTE FUNCTION minidns_rrset_version();
