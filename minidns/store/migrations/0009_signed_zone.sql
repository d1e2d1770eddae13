-- minidns schema 9: the signed zone kept in rows (store/signing.py). Whether a name has anything
-- below it decides whether it stays in the NSEC3 chain as an empty non-terminal (RFC 5155 §7.1);
-- names are found below another by their reversed text, a prefix search on this index.
CREATE INDEX rrsets_rname ON rrsets (zone_id, reverse(name) text_pattern_ops);
