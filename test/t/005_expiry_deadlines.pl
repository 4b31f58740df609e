# The worker moves each expired lease (and each due scheduled item) at its own
# deadline: never before it, and on the wake-up it set for that deadline, not
# on the idle round (querator.worker_idle_interval, 60 s by default). 200
# leases of 1 s taken in 8 batches at staggered times, and 50 scheduled items
# due 20 ms apart:
#  - the commit time of the worker's requeue (promotion) transaction
#    (track_commit_timestamp, the xmin of the moved row) is never before the
#    deadline and at most 10 s after it (a generous bound, far below the idle
#    round, so a loaded machine does not fail it);
#  - a session polling storage_items_list sees every item unleased again.
# How late, in milliseconds, is a figure: bench/run reports it (bench/README.md).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use QueratorTap;

my $node = querator_node('expiry_deadlines', "track_commit_timestamp = on\nlog_statement = none\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');

sql(<<'SQL');
SELECT querator.queues_create('p', lease_timeout => '1 s');
SELECT querator.queues_create('s');
SELECT querator.queue_produce('p', array_agg('t' || g)) FROM generate_series(1, 200) g;

CREATE TABLE leased (token text PRIMARY KEY, lease_deadline timestamptz);
CREATE TABLE seen (token text PRIMARY KEY, seen_at timestamptz);

-- 8 leases of 25, 130 ms apart, each committed on its own.
CREATE PROCEDURE lease_staggered() LANGUAGE plpgsql AS $$
BEGIN
    FOR b IN 1..8 LOOP
        INSERT INTO leased
            SELECT convert_from(payload, 'UTF8'), lease_deadline FROM querator.queue_lease('p', 'c', 25);
        COMMIT;
        PERFORM pg_sleep(0.13);
    END LOOP;
END $$;

-- Polls every 5 ms until all expected items are back unleased (attempts 1).
CREATE FUNCTION poll_requeued(expected int, seconds float8) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    stop_at timestamptz := clock_timestamp() + seconds * interval '1 s';
    n bigint := 0;
BEGIN
    WHILE n < expected AND clock_timestamp() < stop_at LOOP
        INSERT INTO seen
            SELECT convert_from(s.payload, 'UTF8'), clock_timestamp()
            FROM querator.storage_items_list('p', NULL, 1000) s
            WHERE NOT s.leased AND s.attempts = 1
            ON CONFLICT DO NOTHING;
        SELECT count(*) INTO n FROM seen;
        PERFORM pg_sleep(0.005);
    END LOOP;
    RETURN n;
END $$;
SQL

# The poller runs in its own session while the leases are taken.
my ($poll_out, $poll_err) = ('', '');
my $poller = IPC::Run::start(
	[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db),
	  '-c', 'SELECT poll_requeued(200, 30)' ],
	'<', \undef, '>', \$poll_out, '2>', \$poll_err, IPC::Run::timeout(60));
sql('CALL lease_staggered()');
is(sql('SELECT count(*) FROM leased'), '200', '200 leases of 1 s taken in 8 batches');
$poller->finish;
is($poll_out, "200\n", 'the poller saw every item come back') or diag($poll_err);

my $qid = sql("SELECT id FROM querator.queues WHERE name = 'p'");
my $stats = sql(<<"SQL");
WITH lateness AS (
    SELECT extract(epoch FROM pg_xact_commit_timestamp(i.xmin) - l.lease_deadline) * 1000 AS commit_ms,
           extract(epoch FROM s.seen_at - l.lease_deadline) * 1000 AS seen_ms
    FROM querator_data.q${qid}_p0_items i
    JOIN leased l ON l.token = convert_from(i.payload, 'UTF8')
    JOIN seen s ON s.token = l.token)
SELECT count(*),
       round(min(commit_ms)::numeric, 1),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY commit_ms)::numeric, 1),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY commit_ms)::numeric, 1),
       round(max(commit_ms)::numeric, 1),
       round(min(seen_ms)::numeric, 1),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY seen_ms)::numeric, 1),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY seen_ms)::numeric, 1),
       round(max(seen_ms)::numeric, 1)
FROM lateness
SQL
my ($n, $cmin, $c50, $c99, $cmax, $smin, $s50, $s99, $smax) = split /\|/, $stats;
is($n, 200, 'every requeued item is measured');
cmp_ok($cmin, '>=', 0, 'no lease ended before its deadline');
cmp_ok($cmax, '<', 10_000, 'each lease was requeued by its deadline wake-up (within 10 s), not the idle round');
cmp_ok($smin, '>=', 0, 'no item was seen unleased before its deadline');

# Scheduled items: 50 single produces due 20 ms apart, 1 s ahead.
sql(<<'SQL');
DO $$
BEGIN
    FOR k IN 1..50 LOOP
        PERFORM querator.queue_produce('s', 's' || k, enqueue_at => clock_timestamp() + interval '1 s' + k * interval '20 ms');
    END LOOP;
END $$;
CREATE TABLE due AS SELECT convert_from(payload, 'UTF8') AS token, enqueue_at FROM querator.storage_scheduled_list('s');
SQL
ok(defined poll_until($node, $db, "SELECT count(*) FROM querator.storage_items_list('s')", '50', 30, 50),
	'all scheduled items were promoted');
my $sid = sql("SELECT id FROM querator.queues WHERE name = 's'");
($n, $cmin, $c50, $c99, $cmax) = split /\|/, sql(<<"SQL");
WITH lateness AS (
    SELECT extract(epoch FROM pg_xact_commit_timestamp(i.xmin) - d.enqueue_at) * 1000 AS commit_ms
    FROM querator_data.q${sid}_p0_items i JOIN due d ON d.token = convert_from(i.payload, 'UTF8'))
SELECT count(*), round(min(commit_ms)::numeric, 1),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY commit_ms)::numeric, 1),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY commit_ms)::numeric, 1),
       round(max(commit_ms)::numeric, 1)
FROM lateness
SQL
is($n, 50, 'every promoted item is measured');
cmp_ok($cmin, '>=', 0, 'no item promoted before enqueue_at');
cmp_ok($cmax, '<', 10_000, 'each item was promoted by its deadline wake-up (within 10 s), not the idle round');

$node->stop;
done_testing();
