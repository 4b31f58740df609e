# Helpers shared by querator's TAP tests (test/t/*.pl): a node with querator
# preloaded, bounded polling, and the worker's pids.
package QueratorTap;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(querator_node poll_until query_value queue_drained worker_pids wait_for_workers wait_for_server);

# A started node with querator preloaded and a launcher that looks around every second.
sub querator_node
{
	my ($name, $extra_conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'querator'\n"
		  . "querator.launcher_naptime = 1\n"
		  . "listen_addresses = ''\n"
		  . ($extra_conf // ''));
	$node->start;
	return $node;
}

# The first line of a query's output, or undef when it failed (server down, error).
sub query_value
{
	my ($node, $db, $sql) = @_;
	my ($ret, $stdout, $stderr) = $node->psql($db, $sql, timeout => 30);
	return undef if $ret != 0;
	return $stdout;
}

# Runs $sql every $interval_ms until it prints $expected, for at most $timeout_s.
# Returns the seconds it took, or undef (with a diagnostic) on timeout.
sub poll_until
{
	my ($node, $db, $sql, $expected, $timeout_s, $interval_ms) = @_;
	$expected //= 't';
	$timeout_s //= 10;
	$interval_ms //= 50;
	my $start = time;
	my $last;
	while (time - $start < $timeout_s)
	{
		$last = query_value($node, $db, $sql);
		return time - $start if defined $last && $last eq $expected;
		usleep($interval_ms * 1000);
	}
	diag("poll_until: no '$expected' after ${timeout_s}s from: $sql\nlast output: "
		  . ($last // '(error)'));
	return undef;
}

# True once $queue has no ready, leased or scheduled item left (within $timeout_s).
sub queue_drained
{
	my ($node, $db, $queue, $timeout_s) = @_;
	return defined poll_until($node, $db,
		"SELECT NOT EXISTS (SELECT 1 FROM querator.storage_items_list('$queue', NULL, 1000))"
		  . " AND NOT EXISTS (SELECT 1 FROM querator.storage_scheduled_list('$queue', NULL, 1000))",
		't', $timeout_s, 20);
}

# Pids of the querator workers attached to $db (all databases when undef).
sub worker_pids
{
	my ($node, $db) = @_;
	my $filter = defined $db ? " AND datname = '$db'" : '';
	my $out = query_value($node, 'postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'querator worker'$filter ORDER BY pid");
	return () unless defined $out && $out ne '';
	return split /\n/, $out;
}

# Waits until exactly $count workers serve $db; returns true on success.
sub wait_for_workers
{
	my ($node, $db, $count, $timeout_s) = @_;
	return defined poll_until($node, 'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'querator worker' AND datname = '$db'",
		$count, $timeout_s // 10);
}

# Waits until the server accepts queries again (after a crash restart).
sub wait_for_server
{
	my ($node, $timeout_s) = @_;
	return defined poll_until($node, 'postgres', 'SELECT NOT pg_is_in_recovery()', 't', $timeout_s // 60, 100);
}

1;
