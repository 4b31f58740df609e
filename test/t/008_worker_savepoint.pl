# A worker wake-up recorded in a subtransaction that rolls back is dropped with
# it: a lease inside a rolled-back savepoint does not run a worker round when the
# transaction commits (it used to, for a deadline that no longer existed). The
# same lease committed does wake the worker, which plans its next round for the
# lease's deadline.
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
sub rounds { return worker_rounds($node, $db); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the querator worker runs');
sql("SELECT querator.queues_create('sp', lease_timeout => '1 hour')");
sql("SELECT querator.queue_produce('sp', ARRAY['a', 'b'])");

my $before = settled_worker_rounds($node, $db);

sql("BEGIN; SAVEPOINT s; SELECT count(*) FROM querator.queue_lease('sp', 'c', 1); ROLLBACK TO s; COMMIT;");
usleep(1_500_000);
is(rounds(), $before, 'a lease rolled back to its savepoint wakes no worker round at commit');
is(sql("SELECT count(*) FROM querator.storage_items_list('sp') WHERE leased"), '0', 'and leased nothing');

is(sql("SELECT next_wakeup IS NULL FROM querator.worker_status() WHERE database = '$db'"), 't',
	'and leaves the worker nothing to plan for');

# A wake-up plans the next round for the deadline (test/t/009_worker_wakeups.pl).
my $deadline = sql("SELECT lease_deadline FROM querator.queue_lease('sp', 'c', 1)");
ok(defined poll_until($node, $db,
	"SELECT abs(extract(epoch FROM next_wakeup - '$deadline'::timestamptz)) < 5 FROM querator.worker_status() WHERE database = '$db'",
	't', 10), 'the same lease committed plans the worker\'s next round for its deadline');

done_testing();
