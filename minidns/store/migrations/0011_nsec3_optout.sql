-- minidns schema 11: NSEC3 opt-out per signed zone (RFC 5155 §6): delegations without a DS get no
-- NSEC3 record, and every NSEC3 of the zone carries the Opt-Out flag.
ALTER TABLE zones ADD COLUMN nsec3_optout boolean NOT NULL DEFAULT false;
