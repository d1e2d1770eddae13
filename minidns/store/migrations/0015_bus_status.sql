-- minidns schema 15: the state of each message-bus source (minidns/bus/status.py) of each `minidns
-- serve` process that consumes one — connected or why not, what became of its messages, last
-- error, lag — written every few seconds by that process and read by `minidns events status` on any
-- host.

CREATE TABLE bus_status (
    host        text NOT NULL,               -- the process: "<host name>:<pid>"
    source      text NOT NULL,               -- openstack, cloudstack, cloudstack-kafka
    state       jsonb NOT NULL,              -- SourceStatus.to_json()
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host, source)
);
