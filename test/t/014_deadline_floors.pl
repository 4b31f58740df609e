# The worker visits a partition only for what is due there (docs/design.md,
# "Deadline floors"): besides the lease floor (011), each partition has an items
# floor, no scheduled item's enqueue_at and no item's expire deadline before
# it. Checked:
#  - while nothing is due, worker rounds leave the items and scheduled tables
#    alone;
#  - every path that puts a deadline into a partition whose floor is an hour
#    away lowers it, so the deadline is kept: a scheduled produce, a retry with
#    retry_at, a produce into an expiring queue, a dead letter into an expiring
#    dead queue, a redrive into an expiring queue;
#  - after a restart (floors unknown) a scheduled item is still promoted.
# Every bound is seconds long, against an hour-away floor that the wrong
# behaviour would wait for.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('deadline_floors', "querator.worker_idle_interval = 1\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }


sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');

# Queues whose items floor is an hour away: a scheduled item an hour ahead, and
# (expiring queues) items that expire in an hour.
sql(q{
SELECT querator.queues_create('sched', lease_timeout => '1 hour');
SELECT querator.queue_produce('sched', 'far'::text, enqueue_at => now() + interval '1 hour');
SELECT querator.queues_create('expiring', lease_timeout => '1 s', expire_timeout => '1 hour');
SELECT querator.queue_produce('expiring', 'lives an hour'::text);
SELECT querator.queues_create('dead_expiring', lease_timeout => '1 s', expire_timeout => '1 hour');
SELECT querator.queue_produce('dead_expiring', 'lives an hour'::text);
SELECT querator.queues_create('feeder', lease_timeout => '1 hour', dead_queue => 'dead_expiring');
SELECT querator.queue_produce('feeder', 'far'::text, enqueue_at => now() + interval '1 hour');
});
my $sched = sql("SELECT id FROM querator.queues WHERE name = 'sched'");
my $reads_sql = "SELECT sum(seq_scan + coalesce(idx_scan, 0)) FROM pg_stat_user_tables
	WHERE schemaname = 'querator_data' AND relname IN ('q${sched}_p0_items', 'q${sched}_p0_scheduled')";
ok(rounds_pass($node, $db, 3), 'the worker ran its first rounds (they settle the floors)');
my $reads = sql($reads_sql);
ok(rounds_pass($node, $db, 4), 'the worker ran four more rounds');
sql('SELECT pg_sleep(1.5)'); # table statistics are reported at most once a second
is(sql($reads_sql), $reads, 'rounds with nothing due leave the items and scheduled tables alone');

# --- each path lowers the floor of the partition it puts a deadline into
sql(q{SELECT querator.queue_produce('sched', 'soon'::text, enqueue_at => now() + interval '2 s')});
ok(defined poll_until($node, $db,
		q{SELECT count(*) FROM querator.storage_items_list('sched') WHERE convert_from(payload, 'UTF8') = 'soon'}, '1', 30),
	'a scheduled produce is promoted when due');

sql(q{SELECT querator.queue_produce('sched', 'retried'::text)});
sql(q{SELECT querator.queue_retry('sched', array_agg(id), retry_at => now() + interval '2 s')
	FROM querator.queue_lease('sched', 'c', 10)});
is(sql(q{SELECT count(*) FROM querator.storage_scheduled_list('sched') WHERE convert_from(payload, 'UTF8') IN ('soon', 'retried')}),
	'2', 'the two items leased (the promoted one and a new one) are scheduled again');
ok(defined poll_until($node, $db,
		q{SELECT count(*) FROM querator.storage_scheduled_list('sched')}, '1', 30),
	'a retry with retry_at is promoted when due (only the far item is left)');

sql(q{SELECT querator.queues_update('expiring', expire_timeout => '2 s');
	SELECT querator.queue_produce('expiring', 'short'::text);});
ok(defined poll_until($node, $db,
		q{SELECT count(*) FROM querator.storage_dead_list('expiring') WHERE reason = 'expired'}, '1', 30),
	'an item produced into an expiring queue expires when due');

sql(q{SELECT querator.queues_update('dead_expiring', expire_timeout => '2 s');
	SELECT querator.queue_produce('feeder', 'doomed'::text);
	SELECT querator.queue_retry('feeder', array_agg(id), dead => true) FROM querator.queue_lease('feeder', 'c', 10);});
ok(defined poll_until($node, $db,
		q{SELECT count(*) FROM querator.storage_dead_list('dead_expiring') WHERE reason = 'expired'}, '1', 30),
	'a dead letter sent into an expiring dead queue expires there when due');

sql(q{SELECT querator.queues_update('expiring', expire_timeout => '1 hour')});
ok(rounds_pass($node, $db, 2), 'rounds have settled the floor of the expiring queue an hour ahead again');
sql(q{SELECT querator.queues_update('expiring', expire_timeout => '2 s');
	SELECT querator.queue_redrive('expiring');});
ok(defined poll_until($node, $db,
		q{SELECT count(*) FROM querator.storage_dead_list('expiring') WHERE reason = 'expired'}, '1', 30),
	'a redriven item in an expiring queue expires again when due');

# --- after a restart the floors are unknown: due at once
sql(q{SELECT querator.queue_produce('sched', 'across'::text, enqueue_at => now() + interval '3 s')});
$node->restart;
ok(wait_for_workers($node, $db, 1, 20), 'the worker runs after the restart');
ok(defined poll_until($node, $db,
		q{SELECT count(*) FROM querator.storage_items_list('sched') WHERE convert_from(payload, 'UTF8') = 'across'}, '1', 30),
	'an item scheduled before a restart is promoted after it');

$node->stop;
done_testing();
