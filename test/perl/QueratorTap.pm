# Helpers shared by querator's TAP tests (test/t/*.pl): a node with querator
# preloaded, bounded polling, and the worker's pids.
package QueratorTap;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(querator_node poll_until query_value queue_drained worker_pids wait_for_workers wait_for_server
  queue_state_sql);

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

# A query that prints everything a user can see of a database's queues, one
# sorted line each: the catalog as listed, the grants, and every item of every
# list with all its columns. Equal output = the same queues, grants and items
# (used across pg_dump/restore and ALTER EXTENSION UPDATE).
sub queue_state_sql
{
	return q{
	SELECT string_agg(line, E'\n' ORDER BY line) FROM (
		SELECT 'queue ' || concat_ws('|', queue_name, lease_timeout, expire_timeout, max_attempts, dead_queue,
		                             reference, partitions, paused, owner, created_at, updated_at) AS line
		  FROM querator.queues_list()
		UNION ALL
		SELECT 'grant ' || concat_ws('|', queue_name, role_name, privilege) FROM querator.queue_grants
		UNION ALL
		SELECT 'item ' || concat_ws('|', q.queue_name, i.id, i.partition, i.kind, i.reference, i.encoding,
		                            encode(i.payload, 'hex'), i.attempts, i.created_at, i.expire_deadline,
		                            i.source_id, i.leased, i.lease_deadline, i.client_id, i.payload_preview)
		  FROM querator.queues_list() q, querator.storage_items_list(q.queue_name, NULL, 10000) i
		UNION ALL
		SELECT 'scheduled ' || concat_ws('|', q.queue_name, s.id, s.partition, s.kind, encode(s.payload, 'hex'),
		                                 s.attempts, s.created_at, s.enqueue_at)
		  FROM querator.queues_list() q, querator.storage_scheduled_list(q.queue_name, NULL, 10000) s
		UNION ALL
		SELECT 'dead ' || concat_ws('|', q.queue_name, d.id, d.partition, encode(d.payload, 'hex'), d.attempts,
		                            d.created_at, d.dead_at, d.reason)
		  FROM querator.queues_list() q, querator.storage_dead_list(q.queue_name, NULL, 10000) d
	) lines};
}

# Waits until the server accepts queries again (after a crash restart).
sub wait_for_server
{
	my ($node, $timeout_s) = @_;
	return defined poll_until($node, 'postgres', 'SELECT NOT pg_is_in_recovery()', 't', $timeout_s // 60, 100);
}

1;
