# A worker wake-up recorded in a subtransaction that rolls back is dropped with
# it: a lease inside a rolled-back savepoint does not run a worker round when the
# transaction commits (it used to, for a deadline that no longer existed). The
# same lease committed does wake the worker.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use QueratorTap;

# An hour of idle sleep: only a wake-up at commit runs a round during the test.
my $node = querator_node('worker_savepoint', "querator.worker_idle_interval = 3600\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }
sub rounds { return sql("SELECT rounds FROM querator.worker_status() WHERE database = '$db'"); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the querator worker runs');
sql("SELECT querator.queues_create('sp', lease_timeout => '1 hour')");
sql("SELECT querator.queue_produce('sp', ARRAY['a', 'b'])");

# Settled: no round for a second (the creation's rounds are over).
my $before = rounds();
for my $try (1 .. 20)
{
	usleep(1_000_000);
	my $now = rounds();
	last if $now eq $before;
	$before = $now;
}

sql("BEGIN; SAVEPOINT s; SELECT count(*) FROM querator.queue_lease('sp', 'c', 1); ROLLBACK TO s; COMMIT;");
usleep(1_500_000);
is(rounds(), $before, 'a lease rolled back to its savepoint wakes no worker round at commit');
is(sql("SELECT count(*) FROM querator.storage_items_list('sp') WHERE leased"), '0', 'and leased nothing');

sql("BEGIN; SELECT count(*) FROM querator.queue_lease('sp', 'c', 1); COMMIT;");
ok(defined poll_until($node, $db, "SELECT rounds > $before FROM querator.worker_status() WHERE database = '$db'",
		't', 10), 'the same lease committed wakes the worker for its deadline');

done_testing();
