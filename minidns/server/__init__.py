"""The DNS server: the engine that answers, UDP/TCP protocols, configuration and the run loop."""
