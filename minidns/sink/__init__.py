"""The event sink: Nova, Neutron and CloudStack notifications made into A, AAAA and PTR records."""
