# The worker's lease expiry never waits for a consumer's row lock. A consumer
# that extends its lease and, in the same open transaction, completes it
# after the old deadline passed used to deadlock with the worker: the worker
# locked the item row (SKIP LOCKED) and then waited for the lease row the
# extend had updated; the complete then waited for the item row (40P01).
# Now the worker skips a lease row another transaction holds: its round ends
# while the consumer's transaction is open, the complete succeeds, and a lease
# whose extend rolls back is still expired afterwards.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('expiry_never_waits', "deadlock_timeout = '100ms'\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the querator worker runs');
sql("SELECT querator.queues_create('ext', lease_timeout => '2 s')");

# Leases one item in $session and extends it in an open transaction; returns
# (id, old deadline) once the old deadline has passed and the worker has ended
# a round after it (it cannot, while it waits for the lease row).
sub extend_past_deadline
{
	my ($session, $payload) = @_;
	sql("SELECT querator.queue_produce('ext', '$payload'::text)");
	my ($id, $deadline) = split /\|/,
	  $session->query_safe("SELECT id || '|' || lease_deadline FROM querator.queue_lease('ext', 'c', 1)");
	$session->query_safe('BEGIN');
	$session->query_safe("SELECT querator.queue_extend('ext', $id, '1 hour')");
	ok(defined poll_until($node, $db, "SELECT clock_timestamp() > '$deadline'::timestamptz + '200 ms'", 't', 10),
		"$payload: the old deadline has passed");
	ok(defined poll_until($node, $db,
		"SELECT last_run > '$deadline'::timestamptz FROM querator.worker_status() WHERE database = '$db'", 't', 10),
		"$payload: the worker ends a round after it while the extend is uncommitted");
	return $id;
}

my $a = $node->background_psql($db, on_error_stop => 0);
my $id = extend_past_deadline($a, 'a');
$a->query("SELECT querator.queue_complete('ext', $id)");
is($a->{stderr} // '', '', 'the complete in the same transaction does not deadlock');
$a->query_safe('COMMIT');
is(sql("SELECT completed || '/' || lease_expired FROM querator.queue_stats('ext')"), '1/0',
	'the item is completed, its lease was never expired');

my $b = $node->background_psql($db, on_error_stop => 0);
my $id_b = extend_past_deadline($b, 'b');
$b->query_safe('ROLLBACK');
ok(defined poll_until($node, $db, "SELECT lease_expired FROM querator.queue_stats('ext')", '1', 10),
	'a lease whose extend rolled back is expired afterwards');
is(sql("SELECT count(*) FROM querator.storage_items_list('ext') WHERE NOT leased AND attempts = 1"), '1',
	'and its item is ready again');

$_->quit for ($a, $b);
ok(!$node->log_contains('deadlock detected'), 'no deadlock is logged');
done_testing();
