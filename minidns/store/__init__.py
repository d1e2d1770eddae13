"""PostgreSQL as the source of truth: schema and migrations, the one write path, loading zones and
following the change stream. Sits beside xfr/dnssec: imports wire and zones only."""
