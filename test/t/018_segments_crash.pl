# kill -9 while segments rotate (docs/design.md, "Segments"). With
# querator.segment_items at its minimum (100) the worker starts a segment and
# empties a drained one every few hundred items, so killing it (and a load
# backend, and the postmaster's children by a crash restart) lands between the
# steps of rotations: the switch in shared memory, the seal, the emptiness
# check, TRUNCATE, its commit. The ledger of test/perl/QueratorLedger.pm then
# proves that every committed item is completed or present, exactly once, and
# that no item was leased twice while a lease held.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use QueratorTap;
use QueratorLedger;

my $node = querator_node('segcrash',
	"restart_after_crash = on\nquerator.segment_items = 100\nlog_line_prefix = '%m [%p] %b '\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');
sql("SELECT querator.queues_create('load', lease_timeout => '1 s', max_attempts => 3, partitions => 2)");
sql(ledger_sql());
my $qid = sql("SELECT id FROM querator.queues WHERE name = 'load'");

# The segments' files, to see that TRUNCATE ran between the crashes.
sub filenodes
{
	return sql("SELECT string_agg(pg_relation_filenode(c.oid)::text, ' ') FROM pg_class c
	            WHERE c.relname ~ '^q${qid}_p[0-9]+_items_s[0-9]+\$'");
}
my %first = map { $_ => 1 } split / /, filenodes();

# Kill the worker (which rotates) several times at different points of the load.
for my $run (1 .. 3)
{
	my @load = start_load($node, $db, $run, 3, 12);
	ok(wait_for_progress($node, $db, 300 * $run), "load $run is running");
	usleep(int(rand(700_000)));
	my ($worker) = worker_pids($node, $db);
	kill9_and_recover($node, $db, $worker, "the querator worker (run $run)");
	finish_load(@load);
}

# And a backend in the middle of producing into a segment.
my @load = start_load($node, $db, 4, 3, 12);
ok(wait_for_progress($node, $db, 300), 'load 4 is running');
my $backend = load_backend_pid($node, $db, 4, 2);
isnt($backend, '', 'found the backend of load session 2');
kill9_and_recover($node, $db, $backend, 'a load backend');
finish_load(@load);

# The load runs cleanly to its end after the crashes, rotating on.
@load = start_load($node, $db, 5, 3, 4);
is(finish_load(@load), 3, 'the load runs to its end after the crash restarts');

my $changed = grep { !$first{$_} } split / /, filenodes();
cmp_ok($changed, '>=', 1, "segments were emptied with TRUNCATE under the load ($changed new files)");

check_ledger($node, $db, 1000);

$node->stop;
done_testing();
