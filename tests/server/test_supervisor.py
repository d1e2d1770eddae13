"""Worker supervision's bookkeeping (server/supervisor.py): a process's query counts as plain data,
summed over the main process and its workers (the live ones and those that ended) so the metrics'
totals never go back; the configuration line a worker reads."""

import dataclasses

import orjson

from minidns.server.config import load_config
from minidns.answer.stats import QueryStats
from minidns.server.supervisor import StatsTotal, Workers, config_line, stats_snapshot
from minidns.wire import A, AAAA, NOERROR, NXDOMAIN


def _stats(*answers) -> QueryStats:
    stats = QueryStats()
    for tcp, qtype, rcode, seconds in answers:
        stats.answered(tcp, qtype, bytes([0, 0, 0x84, rcode]), seconds)
    stats.engine_hits = [5, 1]
    return stats


def test_counts_survive_the_trip_as_json():
    stats = _stats((False, A, NOERROR, 0.0002), (True, AAAA, NXDOMAIN, 0.003))
    snap = orjson.loads(orjson.dumps(stats_snapshot(stats)))
    total = StatsTotal(stats.BUCKETS, [snap])
    assert total.hits() == stats.hits() and total.answers == stats.answers
    assert total.buckets == stats.buckets and total.counts == stats.counts and total.sums == stats.sums


def test_the_totals_add_the_main_process_the_live_workers_and_the_ended_ones():
    own = _stats((False, A, NOERROR, 0.0002))
    workers = Workers(3, load_config(None, {}))
    workers.snapshots = {101: stats_snapshot(_stats((False, A, NOERROR, 0.0002), (False, A, NXDOMAIN, 0.01)))}
    workers.retired = [stats_snapshot(_stats((True, A, NOERROR, 0.0002)))]
    total = workers.total_stats(own)
    assert total.hits() == (15, 3)
    assert total.answers == {(False, A, NOERROR): 2, (False, A, NXDOMAIN): 1, (True, A, NOERROR): 1}
    assert total.counts == [3, 1] and sum(total.buckets[0]) == 3


def test_a_worker_reads_its_index_and_the_configuration():
    config = dataclasses.replace(load_config(None, {}), listen=("127.0.0.1:5353",))
    message = orjson.loads(config_line(config, 3))
    assert message["index"] == 3 and load_config(None, message["config"]) == config
    assert [w.index for w in Workers(4, config).workers] == [2, 3, 4]  # the main process is worker 1
