# Deadlines survive a restart: they live in the tables, and the worker
# recomputes them when it comes back. Scheduled items produced before a
# restart are delivered after it; leases taken before it expire after it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use QueratorTap;

my $node = querator_node('restart');
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');
my $old_pid = (worker_pids($node, $db))[0];

sql("SELECT querator.queues_create('q', lease_timeout => '3 s')");
sql("SELECT querator.queue_produce('q', ARRAY['l1', 'l2', 'l3']::text[])");
sql("SELECT querator.queue_produce('q', ARRAY['s1', 's2', 's3', 's4', 's5']::text[],
                                   enqueue_at => now() + interval '4 s')");
is(sql("SELECT count(*) FROM querator.queue_lease('q', 'before-restart', 10)"), '3', 'three leases of 3 s');
my $lease_deadline = sql("SELECT max(lease_deadline) FROM querator.storage_items_list('q')");
my $enqueue_at = sql("SELECT max(enqueue_at) FROM querator.storage_scheduled_list('q')");

my $t0 = time;
$node->restart;
note(sprintf('restart took %.2f s', time - $t0));

ok(wait_for_workers($node, $db, 1, 10), 'the worker is back after the restart');
isnt((worker_pids($node, $db))[0], $old_pid, 'a new worker process');

# While the deadlines are still ahead nothing has moved (checked only when the
# restart was fast enough for that to be observable).
my $ahead = sql("SELECT clock_timestamp() < '$lease_deadline'::timestamptz - interval '0.3 s'");
SKIP:
{
	skip 'the restart took longer than the deadlines', 2 unless $ahead eq 't';
	is(sql("SELECT count(*) FROM querator.storage_items_list('q') WHERE leased"), '3',
		'the leases are still held right after the restart');
	is(sql("SELECT count(*) FROM querator.storage_scheduled_list('q')"), '5',
		'the scheduled items are still scheduled right after the restart');
}

ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_items_list('q') WHERE NOT leased AND attempts = 1", '3', 20, 20),
	'the leases taken before the restart expire after it');
is(sql("SELECT clock_timestamp() >= '$lease_deadline'::timestamptz"), 't', '(not before their deadline)');
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_scheduled_list('q')", '0', 20, 20),
	'the scheduled items are promoted after the restart');
my $late = sql("SELECT extract(epoch FROM clock_timestamp() - '$enqueue_at'::timestamptz)");
cmp_ok($late, '>=', 0, 'not before enqueue_at');
cmp_ok($late, '<', 10, 'within 10 s of it (the new worker reads the deadlines as it starts, not at its 60 s idle round)');

is(sql("SELECT string_agg(convert_from(payload, 'UTF8') || ':' || attempts, ' ' ORDER BY id)
        FROM querator.queue_lease('q', 'after-restart', 20)"),
	'l1:2 l2:2 l3:2 s1:1 s2:1 s3:1 s4:1 s5:1',
	'everything is delivered after the restart, the expired leases with attempts 2, each once');
is(sql("SELECT count(*) FROM querator.queue_lease('q', 'again', 20)"), '0', 'nothing more');

# The worker also comes back after an immediate (crash-like) stop.
$node->stop('immediate');
$node->start;
ok(wait_for_workers($node, $db, 1, 10), 'the worker is back after an immediate stop and start');

$node->stop;
done_testing();
