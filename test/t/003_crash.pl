# kill -9 under load. Sessions run produce / lease / complete / retry in a loop
# and log every committed produce, lease and complete in a ledger table in the
# same transaction. The querator worker is killed (a crash restart of the
# cluster), then a backend running the load. Afterwards every produced item
# is either completed or still present (ready, leased, scheduled or dead),
# exactly once, and no item was ever leased to two sessions at once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep time);
use QueratorTap;
use QueratorLedger;

my $node = querator_node('crash',
	"restart_after_crash = on\nlog_lock_waits = on\ndeadlock_timeout = '200ms'\nlog_line_prefix = '%m [%p] %b '\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');

sql(<<'SQL');
SELECT querator.queues_create('load', lease_timeout => '1 s', max_attempts => 3, partitions => 2);
SQL
sql(ledger_sql());

# Phase 1: kill -9 of the querator worker under load.
my @load = start_load($node, $db, 1, 3, 20);
ok(wait_for_progress($node, $db, 500), 'load 1 is running');
my ($worker) = worker_pids($node, $db);
kill9_and_recover($node, $db, $worker, 'the querator worker');
finish_load(@load);

# Phase 2: kill -9 of a backend running the load.
@load = start_load($node, $db, 2, 3, 20);
ok(wait_for_progress($node, $db, 500), 'load 2 is running');
my $backend = load_backend_pid($node, $db, 2, 2);
isnt($backend, '', 'found the backend of load session 2');
kill9_and_recover($node, $db, $backend, 'a load backend');
finish_load(@load);

# Phase 3: the load runs cleanly to its end after the crashes.
@load = start_load($node, $db, 3, 3, 3);
is(finish_load(@load), 3, 'load 3 runs to its end after the crash restarts');

check_ledger($node, $db, 1000);

$node->stop;
done_testing();
