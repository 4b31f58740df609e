# querator.max_tracked_partitions bounds the partitions of all databases: a
# queues_create / queues_update that would exceed it is refused (54000, the
# setting named in the hint) instead of working on untracked partitions. A
# rolled-back create gives its partitions back, a dropped database frees its
# own, and after a restart each worker counts its database's partitions again;
# if they no longer fit (the setting was lowered) it warns once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('partition_limit',
	"querator.max_tracked_partitions = 64\nquerator.worker_idle_interval = 1\n");

sub sql { my ($sql, $db) = @_; return $node->safe_psql($db // 'postgres', $sql); }

# 'ok', or the SQLSTATE and message of the error (with its hint).
sub outcome
{
	my ($sql, $db) = @_;
	my ($ret, $stdout, $stderr) = $node->psql($db // 'postgres', "\\set VERBOSITY verbose\n$sql");
	return 'ok' if $ret == 0;
	return $stderr;
}

sql('CREATE EXTENSION querator');
sql('CREATE DATABASE other');
sql('CREATE EXTENSION querator', 'other');
ok(wait_for_workers($node, 'postgres', 1, 10), 'the worker runs');

# 64 partitions over two databases
is(outcome("SELECT querator.queues_create('o', partitions => 4)", 'other'), 'ok', 'other database: 4 partitions');
is(outcome("SELECT querator.queues_create('a', partitions => 56)"), 'ok', '56 more: 60 tracked');
is(outcome("SELECT querator.queues_create('b', partitions => 4)"), 'ok', '4 more: 64, the limit');

my $err = outcome("SELECT querator.queues_create('c')");
like($err, qr/ERROR:  54000: partitions is invalid; 1 more partitions do not fit: querator.max_tracked_partitions is 64 and 64 are tracked over all databases/,
	'one more partition is refused with 54000');
like($err, qr/HINT:  Raise querator.max_tracked_partitions/, 'the hint names the setting');
like(outcome("SELECT querator.queues_update('b', partitions => 5)"), qr/ERROR:  54000: partitions is invalid/,
	'growing a queue past the limit is refused too');
like(outcome("SELECT querator.queues_create('o2')", 'other'), qr/ERROR:  54000/, 'in any database');
is(sql("SELECT string_agg(queue_name || ':' || partitions, ' ' ORDER BY queue_name) FROM querator.queues_list()"),
	'a:56 b:4', 'the refused calls changed nothing');

# shrinking frees partitions; a rolled-back create gives its reservation back
is(outcome("SELECT querator.queues_update('b', partitions => 2)"), 'ok', 'shrink b to 2 partitions');
is(outcome("BEGIN; SELECT querator.queues_create('c', partitions => 2); ROLLBACK;"), 'ok', 'a create of 2 rolled back');
is(outcome("BEGIN; SAVEPOINT s; SELECT querator.queues_create('c', partitions => 2); ROLLBACK TO s; COMMIT;"), 'ok',
	'... and one rolled back to a savepoint');
is(outcome("SELECT querator.queues_create('d', partitions => 2)"), 'ok', 'the 2 partitions are free again');
like(outcome("SELECT querator.queues_create('e')"), qr/ERROR:  54000/, 'and the limit is reached again');

# a dropped database no longer counts
sql('DROP DATABASE other WITH (FORCE)');
is(outcome("SELECT querator.queues_create('e', partitions => 4)"), 'ok',
	'the partitions of a dropped database are free again');

# after a restart the worker counts what exists before anything is used
$node->restart;
ok(wait_for_workers($node, 'postgres', 1, 10), 'the worker is back after the restart');
ok(defined poll_until($node, 'postgres',
	"DO \$\$ BEGIN PERFORM querator.queues_create('f'); RAISE EXCEPTION 'created'; "
	  . "EXCEPTION WHEN program_limit_exceeded THEN NULL; END \$\$; SELECT 'refused'", 'refused', 10),
	'after a restart, the partitions that exist count again (the worker tracks them)');
is(sql("SELECT count(*) FROM querator.queues_list() WHERE queue_name = 'f'"), '0', 'no queue f');

# lowering the setting below what exists: it still works, and the worker warns once
$node->append_conf('postgresql.conf', "querator.max_tracked_partitions = 128\n");
$node->restart;
ok(wait_for_workers($node, 'postgres', 1, 10), 'restarted with 128');
is(outcome("SELECT querator.queues_create('g', partitions => 36)"), 'ok', '100 partitions now');
$node->append_conf('postgresql.conf', "querator.max_tracked_partitions = 64\n");
my $log_offset = -s $node->logfile;
$node->restart;
ok(wait_for_workers($node, 'postgres', 1, 10), 'restarted with 64 again');
sleep 3; # a few worker rounds (querator.worker_idle_interval = 1)
my $log = slurp_file($node->logfile, $log_offset);
my @warnings = ($log =~ /WARNING:  querator.max_tracked_partitions \(64\) is too small for the partitions that exist/g);
is(scalar @warnings, 1, 'the worker warns once, not every round');
sql("SELECT querator.queue_produce('g', ARRAY['x', 'y']::text[])");
is(sql("SELECT count(*) FROM querator.queue_lease('g', 'c', 10)"), '2', 'untracked partitions still work');

done_testing();
