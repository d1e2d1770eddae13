"""DNS wire format: constants, query parsing and response encoding. Imports nothing of minidns."""

# RR types (RFC 1035 §3.2.2 and later registrations) that the engine treats specially.
A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, DNAME, OPT, DS = 1, 2, 5, 6, 12, 15, 16, 28, 33, 39, 41, 43
RRSIG, NSEC, DNSKEY, TSIG, TKEY = 46, 47, 48, 250, 249
NSEC3, NSEC3PARAM, CDS, CDNSKEY = 50, 51, 59, 60
NXNAME = 128  # RFC 9824 §6: in a compact denial's NSEC bitmap; never a query type
IXFR, AXFR, MAILB, MAILA, ANY = 251, 252, 253, 254, 255

# Classes (RFC 1035 §3.2.4).
IN, CH, HS, NONE, ANYCLASS = 1, 3, 4, 254, 255

# Opcodes (RFC 1035 §4.1.1, RFC 1996).
QUERY, NOTIFY, UPDATE = 0, 4, 5

# Rcodes (RFC 1035 §4.1.1, RFC 6891 §6.1.3).
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, YXDOMAIN, NOTAUTH = 0, 1, 2, 3, 4, 5, 6, 9
YXRRSET, NXRRSET, NOTZONE = 7, 8, 10  # RFC 2136 §2.2
BADVERS, BADCOOKIE = 16, 23  # extended rcodes: the OPT carries the upper 8 bits

# Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2).
QR, AA, TC, RD, RA, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010

# EDNS (RFC 6891) and its options.
DO_BIT = 0x8000
CO_BIT = 0x4000  # Compact Answers OK (RFC 9824 §4)
OPT_NSID = 3
OPT_COOKIE = 10  # DNS cookies (RFC 7873)
OPT_EDE = 15
EDE_OTHER, EDE_PROHIBITED, EDE_NOT_AUTHORITATIVE = 0, 18, 20  # RFC 8914 §4
