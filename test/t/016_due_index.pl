# The worker finds due partitions in the due index, a dense shared array of
# each partition's earliest floor whose slots are taken and given back with
# the partitions (docs/design.md, "Deadline floors"). Checked, with
# querator.max_tracked_partitions just above what exists so that new queues
# must reuse the slots of deleted ones:
#  - a lease in a queue whose slot was reused ends (a slot left with its old
#    key, or never given back, leaves it in place: its lease is an hour long
#    unless the worker ends it at the 2 s deadline);
#  - after a restart, with more partitions than the worker looks at between
#    two drops of its caches (256), a lease taken before the restart and one
#    taken just after both end, and the worker reports no error.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('due_index', "querator.max_tracked_partitions = 330\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

# 20 queues per transaction: each takes ~120 locks to create its tables and segments.
sub create_queues
{
	my ($from, $to) = @_;
	for (my $first = $from; $first <= $to; $first += 20)
	{
		my $last = $first + 19 < $to ? $first + 19 : $to;
		sql("SELECT count(querator.queues_create('q' || n, lease_timeout => '1 hour'))
			FROM generate_series($first, $last) g(n)");
	}
}

sub lease_ends
{
	my ($queue, $what) = @_;
	ok(defined poll_until($node, $db,
			"SELECT count(*) = 1 FROM querator.storage_items_list('$queue') WHERE NOT leased AND attempts = 1",
			't', 30),
		$what);
}

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');

create_queues(1, 320);
sql("SELECT querator.queues_delete('q' || n) FROM generate_series($_, $_ + 39, 2) g(n)") for grep { $_ % 40 == 1 } 1 .. 320;
create_queues(1001, 1160); # 160 new partitions: slots given back by the deletes
is(sql('SELECT count(*) FROM querator.queues'), '320', '320 queues, 160 of them in reused slots');

sql(q{SELECT querator.queues_update('q1160', lease_timeout => '2 s');
	SELECT querator.queue_produce('q1160', 'a'::text);
	SELECT count(*) FROM querator.queue_lease('q1160', 'c', 1);});
lease_ends('q1160', 'a lease in a queue with a reused slot ends at its deadline');

sql(q{SELECT querator.queues_update('q2', lease_timeout => '3 s');
	SELECT querator.queue_produce('q2', 'b'::text);
	SELECT count(*) FROM querator.queue_lease('q2', 'c', 1);});
$node->restart;
ok(wait_for_workers($node, $db, 1, 30), 'the worker runs again');
sql(q{SELECT querator.queues_update('q1001', lease_timeout => '1 s');
	SELECT querator.queue_produce('q1001', 'c'::text);
	SELECT count(*) FROM querator.queue_lease('q1001', 'c', 1);});
lease_ends('q1001', 'a lease taken just after the restart ends');
lease_ends('q2', 'a lease taken before the restart ends');
ok(defined poll_until($node, $db,
		q{SELECT rounds > 3 FROM querator.worker_status() WHERE database = current_database()}, 't', 30),
	'the worker has finished its first look at every partition and goes on');
my $log = slurp_file($node->logfile);
unlike($log, qr/querator worker.*\n.*ERROR|ERROR:.*querator/, 'no error in the server log');

done_testing();
