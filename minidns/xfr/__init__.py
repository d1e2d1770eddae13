"""Zone transfers (AXFR/IXFR), NOTIFY and propagation tracking: layered over wire and zones."""
