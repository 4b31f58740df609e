# A lease that is due but whose item another transaction holds (a complete not
# yet committed) makes the worker back off: it retries 100 ms later, without
# spinning. While it backs off it must publish when it will look again, not the
# due deadline it could not end: a commit wakes the worker only for a deadline
# earlier than the published one, so with the due deadline published no commit
# woke it, and every lease deadline coming due during a back-off waited for the
# end of it (docs/design.md, "The background worker").
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use QueratorTap;

# An hour of idle sleep: only deadlines and wake-ups run rounds.
my $node = querator_node('worker_backoff', "querator.worker_idle_interval = 3600\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the querator worker runs');
sql("SELECT querator.queues_create('held', lease_timeout => '1 s')");
sql("SELECT querator.queue_produce('held', 'h'::text)");
my ($id, $deadline) = split /\|/, sql("SELECT id, lease_deadline FROM querator.queue_lease('held', 'c', 1)");

# The consumer completes the item but has not committed yet: its row is locked.
my $holder = $node->background_psql($db);
$holder->query_safe("BEGIN; SELECT querator.queue_complete('held', ${id}::bigint)");

ok(defined poll_until($node, $db, "SELECT clock_timestamp() > '$deadline'::timestamptz + interval '0.5 s'", 't', 20),
	'the lease is due');
my $rounds = worker_rounds($node, $db);
ok(defined poll_until($node, $db,
	"SELECT rounds >= $rounds + 3 FROM querator.worker_status() WHERE database = '$db'", 't', 20),
	'the worker retries the locked lease in further rounds (it backs off)');

# next_wakeup is NULL while a round runs; outside rounds it is what the worker published.
my ($seen, $before_due) = (0, 0);
for (1 .. 40)
{
	my $planned = sql("SELECT coalesce((next_wakeup > '$deadline'::timestamptz)::text, 'running')"
		  . " FROM querator.worker_status() WHERE database = '$db'");
	$seen++ if $planned ne 'running';
	$before_due++ if $planned eq 'false';
	usleep(25_000);
}
cmp_ok($seen, '>', 0, 'the worker published its plan between rounds');
is($before_due, 0, 'and never the due deadline it backs off from: a deadline committed meanwhile wakes it')
  or diag("$before_due of $seen samples showed the due deadline $deadline");

# The holder gives up: the lease is ended by the worker, the item comes back.
$holder->query_safe('ROLLBACK');
$holder->quit;
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_items_list('held') WHERE NOT leased AND attempts = 1", '1', 20),
	'once the row is free the worker ends the lease');

$node->stop;
done_testing();
