"""Online DNSSEC signing and denial of existence: layered over wire and zones."""
