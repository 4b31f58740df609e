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
  worker_rounds settled_worker_rounds rounds_pass queue_state_sql queue_tables_ddl_0_1_0 with_0_1_0_queue_tables table_shapes_sql
  with_soft_nofile kill9_server);

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

# The worker's round counter of $db (worker_status()).
sub worker_rounds
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, "SELECT rounds FROM querator.worker_status() WHERE database = '$db'");
}

# Waits (at most 30 s) for the worker of $db to run $n more rounds; true when it did.
sub rounds_pass
{
	my ($node, $db, $n) = @_;
	my $rounds = worker_rounds($node, $db);
	return defined poll_until($node, $db,
		"SELECT rounds >= $rounds + $n FROM querator.worker_status() WHERE database = '$db'", 't', 30, 100);
}

# The round counter once the worker ran no round for a second (at most 20 s): the rounds
# of what came before are over, so only what the test does next moves it.
sub settled_worker_rounds
{
	my ($node, $db) = @_;
	my $before = worker_rounds($node, $db);
	for (1 .. 20)
	{
		usleep(1_000_000);
		my $now = worker_rounds($node, $db);
		return $now if $now eq $before;
		$before = $now;
	}
	return $before;
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

# The DDL of a queue's tables as the 0.1.0 library ran it (storage_create_queue
# and storage_create_partitions in src/storage.cpp of the 0.1.0 release, but for
# the sequence, which the library still creates). Frozen like
# sql/querator--0.1.0.sql: from 0.2.0 on the library clones the templates of
# the upgrade script, and this text stands for the 0.1.0 library in the
# upgrade tests. Table names (quoted, qualified) by kind: items, leases,
# scheduled, dead; kinds left out are not created.
sub queue_tables_ddl_0_1_0
{
	my (%table) = @_;
	my %ddl = (
		dead => "CREATE TABLE {dead} ("
		  . "  id bigint PRIMARY KEY, partition integer NOT NULL, attempts integer NOT NULL,"
		  . "  created_at timestamptz NOT NULL, expire_deadline timestamptz, source_id bigint, source_queue integer,"
		  . "  last_error text, origin_id bigint, kind text NOT NULL, reference text NOT NULL, encoding text NOT NULL, payload bytea NOT NULL,"
		  . "  dead_at timestamptz NOT NULL, reason text NOT NULL);",
		items => "CREATE TABLE {items} ("
		  . "  id bigint PRIMARY KEY, attempts integer NOT NULL, created_at timestamptz NOT NULL,"
		  . "  expire_deadline timestamptz, source_id bigint, source_queue integer, last_error text, origin_id bigint,"
		  . "  kind text NOT NULL, reference text NOT NULL, encoding text NOT NULL, payload bytea NOT NULL);"
		  . "CREATE INDEX ON {items} (expire_deadline) WHERE expire_deadline IS NOT NULL;",
		leases => "CREATE TABLE {leases} ("
		  . "  id bigint PRIMARY KEY, lease_deadline timestamptz NOT NULL, attempts integer NOT NULL,"
		  . "  client_id text NOT NULL);"
		  . "CREATE INDEX ON {leases} (lease_deadline);",
		scheduled => "CREATE TABLE {scheduled} ("
		  . "  id bigint PRIMARY KEY, enqueue_at timestamptz NOT NULL, attempts integer NOT NULL,"
		  . "  created_at timestamptz NOT NULL, expire_deadline timestamptz, source_id bigint, source_queue integer,"
		  . "  last_error text, origin_id bigint, kind text NOT NULL, reference text NOT NULL, encoding text NOT NULL,"
		  . "  payload bytea NOT NULL);"
		  . "CREATE INDEX ON {scheduled} (enqueue_at, id);"
		  . "CREATE INDEX ON {scheduled} (expire_deadline) WHERE expire_deadline IS NOT NULL;");
	my $sql = '';
	for my $kind (sort keys %table)
	{
		die "no 0.1.0 table of kind $kind" unless $ddl{$kind};
		(my $one = $ddl{$kind}) =~ s/\{$kind\}/$table{$kind}/g;
		$sql .= "$one\n";
	}
	return $sql;
}

# Runs $sql in $db (a 0.1.0 database) as the 0.1.0 library would: the queues
# it creates get the tables of queue_tables_ddl_0_1_0. The new library creates
# queue tables only from the templates of its upgrade script and refuses
# before ALTER EXTENSION UPDATE; so for this one transaction the 0.1.0 DDL
# stands in as the templates, and is dropped again before the commit. Returns
# the output of $sql.
sub with_0_1_0_queue_tables
{
	my ($node, $db, $sql) = @_;
	my %template = map { ($_ => "querator_data.${_}_template") } qw(items leases scheduled dead);
	my $out = $node->safe_psql($db,
		"BEGIN;\n"
		  . queue_tables_ddl_0_1_0(%template)
		  . "$sql;\n"
		  . 'DROP TABLE ' . join(', ', map { $template{$_} } sort keys %template) . ";\n"
		  # 0.1.0 had no segments (0.6.0): its items and leases tables held the rows themselves.
		  . q{DO $$ DECLARE t text; BEGIN
		        FOR t IN SELECT relname FROM pg_class WHERE relnamespace = 'querator_data'::regnamespace
		                   AND relname ~ '^q[0-9]+_p[0-9]+_(items|leases)_s[0-9]+$' LOOP
		            EXECUTE format('DROP TABLE querator_data.%I', t);
		        END LOOP; END $$;} . "\n"
		  . 'COMMIT;');
	return $out;
}

# A query giving (relname, shape) for every table of querator_data: one text
# per table with everything a table definition holds (kind, persistence,
# storage parameters, owner, privileges, comment; each column's type, NOT
# NULL, default, identity, storage, compression, statistics target, collation,
# comment; indexes; constraints; triggers), the table's own name replaced by T.
# Equal shapes = tables defined alike (a queue table and its template, or one
# created by the 0.1.0 DDL).
sub table_shapes_sql
{
	return q{
	WITH t AS (SELECT oid, relname FROM pg_class WHERE relnamespace = 'querator_data'::regnamespace AND relkind = 'r'),
	lines AS (
		SELECT t.relname, 'table kind=' || c.relkind::text || ' persistence=' || c.relpersistence::text
		       || ' options=' || coalesce(c.reloptions::text, '-') || ' owner=' || c.relowner::regrole
		       || ' acl=' || coalesce(c.relacl::text, '-') || ' rls=' || c.relrowsecurity || ' replica=' || c.relreplident::text
		       || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '-') AS line
		  FROM t JOIN pg_class c ON c.oid = t.oid
		UNION ALL
		SELECT t.relname, 'column ' || lpad(a.attnum::text, 3, '0') || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
		       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		       || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
		       || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text
		       || ' storage=' || a.attstorage::text || ' compression=' || a.attcompression::text
		       || ' statistics=' || a.attstattarget || ' collation=' || coalesce(a.attcollation::regcollation::text, '-')
		       || ' comment=' || coalesce(col_description(t.oid, a.attnum), '-')
		  FROM t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
		  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
		UNION ALL
		SELECT t.relname, 'index ' || pg_get_indexdef(i.indexrelid) || ' primary=' || i.indisprimary
		       || ' comment=' || coalesce(obj_description(i.indexrelid, 'pg_class'), '-')
		  FROM t JOIN pg_index i ON i.indrelid = t.oid
		UNION ALL
		SELECT t.relname, 'constraint ' || co.conname || ' ' || co.contype::text || ' ' || pg_get_constraintdef(co.oid)
		  FROM t JOIN pg_constraint co ON co.conrelid = t.oid
		UNION ALL
		SELECT t.relname, 'trigger ' || pg_get_triggerdef(tg.oid) FROM t JOIN pg_trigger tg ON tg.tgrelid = t.oid
	)
	SELECT relname, string_agg(replace(line, relname, 'T'), E'\n' ORDER BY line) AS shape FROM lines GROUP BY relname};
}

# Runs $code (a server start: the server inherits it) with this process's soft
# descriptor limit set to $limit, then restores it; returns what $code returns.
sub with_soft_nofile
{
	my ($limit, $code) = @_;
	my $soft = sub {
		my $out = `prlimit --pid $$ --nofile --noheadings --output SOFT`;
		die "prlimit failed" if $? != 0;
		$out =~ s/\s+//g;
		return $out;
	};
	my $set = sub {
		system('prlimit', '--pid', $$, "--nofile=$_[0]:") == 0 or die "prlimit --nofile=$_[0]: failed";
	};
	my $before = $soft->();
	$set->($limit);
	my $result = eval { $code->() };
	my $error = $@;
	$set->($before);
	die $error if $error;
	return $result;
}

# Waits until the server accepts queries again (after a crash restart).
sub wait_for_server
{
	my ($node, $timeout_s) = @_;
	return defined poll_until($node, 'postgres', 'SELECT NOT pg_is_in_recovery()', 't', $timeout_s // 60, 100);
}

# A lost machine: kill -9 of the postmaster of $node and of every process of it at
# once (the postmaster alone would leave its backends running until they notice),
# then waits (at most 30 s) until they are gone, so that the node can start again.
# Returns how many processes it killed.
sub kill9_server
{
	my ($node) = @_;
	my @pids = ($node->{_pid},
		split /\n/, $node->safe_psql('postgres', 'SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()'));
	my $killed = kill('KILL', @pids);
	$node->{_pid} = undef;    # as PostgreSQL::Test::Cluster's kill9 records it
	for (1 .. 300)
	{
		last unless grep { kill(0, $_) } @pids;
		usleep(100_000);
	}
	return $killed;
}

1;
