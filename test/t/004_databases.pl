# One worker per database that has the extension: two databases are both
# served; DROP EXTENSION, DROP DATABASE ... WITH (FORCE) and a plain DROP DATABASE succeed while the
# worker runs, the worker leaves, and the launcher does not keep restarting it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use QueratorTap;

my $node = querator_node('databases', "log_line_prefix = '%m [%p] %b '\n");

$node->safe_psql('postgres', 'CREATE DATABASE db_a');
$node->safe_psql('postgres', 'CREATE DATABASE db_b');
$node->safe_psql('postgres', 'CREATE DATABASE db_plain');
$node->safe_psql($_, 'CREATE EXTENSION querator') for qw(db_a db_b);

ok(wait_for_workers($node, 'db_a', 1, 10), 'a worker serves db_a');
ok(wait_for_workers($node, 'db_b', 1, 10), 'a worker serves db_b');
ok(defined poll_until($node, 'postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'querator worker'", '2', 10),
	'and no other database has one (postgres, db_plain)');
is($node->safe_psql('db_a', "SELECT string_agg(database || ':' || running, ' ' ORDER BY database)
                             FROM querator.worker_status()"),
	'db_a:true db_b:true', 'worker_status() lists both databases');

# Each worker expires its own database's 1 s lease.
for my $db (qw(db_a db_b))
{
	$node->safe_psql($db, "SELECT querator.queues_create('q', lease_timeout => '1 s');
	                       SELECT querator.queue_produce('q', '$db'::text)");
	is($node->safe_psql($db, "SELECT count(*) FROM querator.queue_lease('q', 'c')"), '1', "$db: leased");
}
for my $db (qw(db_a db_b))
{
	ok(defined poll_until($node, $db,
		"SELECT count(*) FROM querator.storage_items_list('q') WHERE NOT leased AND attempts = 1", '1', 10, 20),
		"$db: its worker expired the lease");
}
is($node->safe_psql('db_a', "SELECT string_agg(database || ':' || (expired_leases = 1), ' ' ORDER BY database)
                             FROM querator.worker_status()"),
	'db_a:true db_b:true', 'each worker counted exactly its own expiry');

# DROP EXTENSION while the worker runs: succeeds, and the worker leaves.
# A lease due in 1 s keeps the worker busy around the drop.
$node->safe_psql('db_a', "SELECT querator.queue_produce('q', 'x'::text);
                          SELECT count(*) FROM querator.queue_lease('q', 'c', 10)");
my ($ret, $out, $err) = $node->psql('db_a', "SET statement_timeout = '10s'; DROP EXTENSION querator CASCADE",
	timeout => 30);
is($ret, 0, 'DROP EXTENSION querator CASCADE succeeds while the worker runs') or diag($err);
my $left = poll_until($node, 'postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'querator worker' AND datname = 'db_a'", '0', 10, 50);
ok(defined $left, 'the db_a worker leaves after DROP EXTENSION');
note(sprintf('db_a worker left %.2f s after DROP EXTENSION', $left // -1));
is($node->safe_psql('db_a', "SELECT count(*) FROM pg_extension WHERE extname = 'querator'")
	  . $node->safe_psql('db_a', "SELECT count(*) FROM pg_namespace WHERE nspname = 'querator_data'"),
	'00', 'the extension and its data schema are gone');
sleep(2);    # two launcher rounds: it must not bring a worker back
my @pids = worker_pids($node, 'db_a');
is(scalar(@pids), 0, 'the launcher does not restart a worker for db_a');
is($node->safe_psql('db_b', "SELECT string_agg(database, ' ') FROM querator.worker_status()"),
	'db_b', 'worker_status() no longer lists db_a');

# CREATE EXTENSION again brings it back.
$node->safe_psql('db_a', 'CREATE EXTENSION querator');
ok(wait_for_workers($node, 'db_a', 1, 10), 'CREATE EXTENSION again starts a worker for db_a');

# DROP DATABASE ... WITH (FORCE) while its worker runs.
my ($b_worker) = worker_pids($node, 'db_b');
my $offset = -s $node->logfile;
my $t0 = time;
($ret, $out, $err) = $node->psql('postgres', "SET statement_timeout = '20s'; DROP DATABASE db_b WITH (FORCE)",
	timeout => 30);
is($ret, 0, 'DROP DATABASE db_b WITH (FORCE) succeeds while its worker runs') or diag($err);
note(sprintf('DROP DATABASE WITH (FORCE) took %.2f s', time - $t0));
ok(!kill(0, $b_worker), 'the db_b worker process is gone');

# The launcher must settle: no worker for the dropped database, no restart loop.
sleep(3);    # three launcher rounds (naptime 1 s)
my $count1 = () = slurp_file($node->logfile, $offset) =~ /background worker "querator worker" \(PID \d+\) exited/g;
sleep(2);
my $count2 = () = slurp_file($node->logfile, $offset) =~ /background worker "querator worker" \(PID \d+\) exited/g;
is($count2, $count1, 'no querator worker keeps exiting after the drop (restart loop)');
# FORCE terminates the worker (one FATAL). The launcher, woken by that exit
# while the drop is still in progress, must not start a worker that then fails
# to connect ("database ... does not exist").
my @errors = slurp_file($node->logfile, $offset) =~ /^.*(?:ERROR|FATAL):.*$/mg;
is(scalar(grep { !/terminating background worker "querator worker" due to administrator command/ } @errors),
	0, 'nothing but the terminated worker is logged as an error around the drop') or diag(join("\n", @errors));
note("logged around the drop:\n" . join("\n", @errors)) if @errors;
is($node->safe_psql('postgres', "SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_stat_activity
                                  WHERE backend_type = 'querator worker'"),
	'db_a', 'only db_a has a worker now');
is($node->safe_psql('db_a', "SELECT string_agg(database, ' ') FROM querator.worker_status()"),
	'db_a', 'worker_status() lists only db_a');

# The remaining database is still served.
$node->safe_psql('db_a', "SELECT querator.queues_create('q2', lease_timeout => '1 s');
                          SELECT querator.queue_produce('q2', 'z'::text);
                          SELECT count(*) FROM querator.queue_lease('q2', 'c')");
ok(defined poll_until($node, 'db_a',
	"SELECT count(*) FROM querator.storage_items_list('q2') WHERE NOT leased", '1', 10, 20),
	'db_a is still served after db_b was dropped');

# DROP EXTENSION while the worker is idle (no deadline ahead, asleep for up to
# querator.worker_idle_interval = 60 s): it must still leave at once.
$node->safe_psql('db_a', 'DROP EXTENSION querator CASCADE');
ok(defined poll_until($node, 'postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'querator worker' AND datname = 'db_a'",
	'0', 5, 100), 'an idle worker leaves within 5 s of DROP EXTENSION');

# A plain DROP DATABASE (no FORCE) while a worker serves the database: the worker
# sees the drop waiting for it and leaves, so the drop succeeds; no worker comes back.
$node->safe_psql('postgres', 'CREATE DATABASE db_c');
$node->safe_psql('db_c', "CREATE EXTENSION querator; SELECT querator.queues_create('q3');
                          SELECT querator.queue_produce('q3', 'c'::text)");
ok(wait_for_workers($node, 'db_c', 1, 10), 'a worker serves db_c');
my ($c_worker) = worker_pids($node, 'db_c');
$offset = -s $node->logfile;
$t0 = time;
($ret, $out, $err) = $node->psql('postgres', "SET statement_timeout = '20s'; DROP DATABASE db_c", timeout => 30);
is($ret, 0, 'a plain DROP DATABASE db_c succeeds while its worker runs') or diag($err);
note(sprintf('plain DROP DATABASE took %.2f s', time - $t0));
ok(!kill(0, $c_worker), 'the db_c worker process is gone');
like(slurp_file($node->logfile, $offset), qr/querator worker leaves: DROP DATABASE/, 'the worker says why it left');
sleep(2);    # two launcher rounds
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'querator worker'"),
	'0', 'no worker is started for the dropped database');

$node->stop;
done_testing();
