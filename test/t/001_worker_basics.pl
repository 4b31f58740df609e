# The background worker's duties (spec sections 3 and 6): it starts with the
# extension, expires leases (requeue at the tail with attempts kept, or dead
# letters after max_attempts, into the queue's own table or its dead queue),
# dead-letters items past expire_timeout, and promotes scheduled items on time.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('worker_basics');
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

$node->safe_psql($db, 'CREATE EXTENSION querator');

# The worker starts by itself and shows up by name.
ok(wait_for_workers($node, $db, 1, 10), 'a querator worker serves the database after CREATE EXTENSION');
ok(defined poll_until($node, $db,
	"SELECT running AND pid IS NOT NULL AND last_run IS NOT NULL FROM querator.worker_status() WHERE database = '$db'",
	't', 10), 'worker_status() shows it running');
is(sql("SELECT pid FROM querator.worker_status() WHERE database = '$db'"),
	(worker_pids($node, $db))[0], 'worker_status() reports the pid seen in pg_stat_activity');
is(sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'querator launcher'"),
	'1', 'one launcher runs');

# --- lease expiry: the item comes back at the tail, new id, attempts kept
sql("SELECT querator.queues_create('expiry', lease_timeout => '1 s')");
my $id_a = sql("SELECT querator.queue_produce('expiry', 'a'::text)");
my $id_b = sql("SELECT querator.queue_produce('expiry', 'b'::text)");
is(sql("SELECT id || ',' || attempts FROM querator.queue_lease('expiry', 'c1')"),
	"$id_a,1", 'first lease takes a with attempts 1');
my $waited = poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_items_list('expiry') WHERE NOT leased", '2', 10, 20);
ok(defined $waited, 'the expired lease is released by the worker');
note(sprintf('lease of 1 s released after %.2f s', $waited // -1));
my $new_a = sql("SELECT id FROM querator.storage_items_list('expiry') WHERE convert_from(payload, 'UTF8') = 'a'");
cmp_ok($new_a, '>', $id_b, 'the requeued item has a new id behind b (the tail)');
is(sql("SELECT string_agg(convert_from(payload, 'UTF8') || ':' || attempts, ' ' ORDER BY id)
        FROM querator.queue_lease('expiry', 'c2', 10)"),
	'b:1 a:2', 'a second lease returns b first, then a with attempts 2');
is(sql("SELECT count(*) FROM querator.queue_lease('expiry', 'c3', 10)"), '0', 'nothing is leased twice');

# --- max_attempts without a dead queue: the queue's own dead letters
sql("SELECT querator.queues_create('limited', lease_timeout => '1 s', max_attempts => 2)");
my $id_x = sql("SELECT querator.queue_produce('limited', 'x'::text)");
is(sql("SELECT attempts FROM querator.queue_lease('limited', 'c1')"), '1', 'max_attempts queue: attempt 1');
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_items_list('limited') WHERE NOT leased", '1', 10, 20),
	'after the first expiry the item is back');
is(sql("SELECT attempts FROM querator.queue_lease('limited', 'c1')"), '2', 'max_attempts queue: attempt 2');
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_dead_list('limited')", '1', 10, 20),
	'after the second expiry the item is dead');
is(sql("SELECT convert_from(payload, 'UTF8') || ':' || attempts || ':' || reason
        FROM querator.storage_dead_list('limited')"),
	'x:2:max_attempts', 'dead letter keeps payload and attempts, reason max_attempts');
is(sql("SELECT count(*) FROM querator.storage_items_list('limited')"), '0', 'and it left the items');

# --- max_attempts with a dead queue: copied there with source_id, attempts 0
sql("SELECT querator.queues_create('dlq')");
sql("SELECT querator.queues_create('with_dlq', lease_timeout => '1 s', max_attempts => 1, dead_queue => 'dlq')");
sql("SELECT querator.queue_produce('with_dlq', 'y'::text)");
my $leased_y = sql("SELECT id FROM querator.queue_lease('with_dlq', 'c1')");
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_items_list('dlq')", '1', 10, 20),
	'the expired item reaches the dead queue');
is(sql("SELECT convert_from(payload, 'UTF8') || ':' || attempts || ':' || source_id
        FROM querator.storage_items_list('dlq')"),
	"y:0:$leased_y", 'dead queue copy: payload, attempts 0, source_id = the id it had');
is(sql("SELECT (SELECT count(*) FROM querator.storage_items_list('with_dlq'))
            + (SELECT count(*) FROM querator.storage_dead_list('with_dlq'))"),
	'0', 'and it left the source queue (no own dead letter either)');
is(sql("SELECT convert_from(payload, 'UTF8') FROM querator.queue_lease('dlq', 'c1')"),
	'y', 'the dead queue copy is leasable');

# --- expire_timeout: dead-lettered whether leased or not
sql("SELECT querator.queues_create('expiring', lease_timeout => '2 s', expire_timeout => '2 s')");
sql("SELECT querator.queue_produce('expiring', ARRAY['u', 'l']::text[])");
# Lease after a pause so the lease would outlive the expire deadline.
sql("SELECT pg_sleep(0.5)");
is(sql("SELECT convert_from(payload, 'UTF8') FROM querator.queue_lease('expiring', 'c1')"),
	'u', 'expire_timeout queue: one item leased, one not');
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_dead_list('expiring')", '2', 10, 20),
	'both items are dead-lettered at their expire deadline');
is(sql("SELECT string_agg(convert_from(payload, 'UTF8') || ':' || attempts || ':' || reason, ' ' ORDER BY payload)
        FROM querator.storage_dead_list('expiring')"),
	'l:0:expired u:1:expired', 'the leased and the unleased item died with reason expired');
# dead_at is the worker transaction's start (now()); the move itself checks clock_timestamp().
is(sql("SELECT bool_and(dead_at >= expire_deadline - interval '100 ms') FROM querator.storage_dead_list('expiring')"),
	't', 'not before their expire deadline');
is(sql("SELECT count(*) FROM querator.storage_items_list('expiring')"), '0', 'no item left behind');

# --- scheduled delivery
sql("SELECT querator.queues_create('sched')");
sql("SELECT querator.queue_produce('sched', 's'::text, enqueue_at => now() + interval '2 s')");
my $enqueue_at = sql("SELECT enqueue_at FROM querator.storage_scheduled_list('sched')");
is(sql("SELECT count(*) FROM querator.queue_lease('sched', 'c1')"), '0', 'a scheduled item is not leasable early');
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_items_list('sched')", '1', 20, 10),
	'the worker promotes the scheduled item');
my $late = sql("SELECT extract(epoch FROM clock_timestamp() - '$enqueue_at'::timestamptz)");
cmp_ok($late, '>=', 0, 'not before enqueue_at');
cmp_ok($late, '<', 10, 'on its deadline wake-up (within 10 s), not the 60 s idle round');
note(sprintf('scheduled item seen %.3f s after enqueue_at', $late));
is(sql("SELECT convert_from(payload, 'UTF8') || ':' || attempts FROM querator.queue_lease('sched', 'c1')"),
	's:1', 'the due item is leasable');

# --- the counters add up
is(sql("SELECT expired_leases >= 4, promoted >= 1, expired_items >= 1, dead_lettered >= 4
        FROM querator.worker_status() WHERE database = '$db'"),
	't|t|t|t', 'worker_status() counts expired leases, promotions, expired items and dead letters');

# The worker logged its start.
ok($node->log_contains('querator worker started'), 'LOG: querator worker started');

$node->stop;
ok($node->log_contains('querator worker stopping'), 'LOG: querator worker stopping on shutdown');

done_testing();
