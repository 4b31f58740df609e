# Queue tables are clones of the templates of the upgrade script
# (querator_data.{items,leases,scheduled,dead}_template). A clone is identical
# to the table the 0.1.0 library created with its own DDL (catalogs and
# pg_dump); the templates are the extension's, owned like querator_data's
# tables, readable by nobody without a grant, and no queue; before ALTER
# EXTENSION UPDATE the new library refuses to create queue tables and says
# what to run.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('templates');
my ($db, $old) = ('qtpl', 'qold');
my @kinds = qw(items leases scheduled dead);

sub sql { my ($d, $q) = @_; return $node->safe_psql($d, $q); }

# The shape (table_shapes_sql) of one table of querator_data.
sub shape
{
	my ($d, $relname) = @_;
	return sql($d, 'SELECT shape FROM (' . table_shapes_sql() . ") s WHERE relname = '$relname'");
}

# pg_dump --schema-only of one table of querator_data, its name replaced by T
# (and without the random key of \restrict, which differs on every run).
sub dump_of
{
	my ($d, $relname) = @_;
	my ($out, $err);
	IPC::Run::run([ 'pg_dump', '--schema-only', '--dbname', $node->connstr($d), '--table', "querator_data.$relname" ],
		'>', \$out, '2>', \$err) or die "pg_dump failed: $err";
	$out =~ s/\Q$relname\E/T/g;
	$out =~ s/^\\(un)?restrict .*$//mg;
	return $out;
}

$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql('postgres', "CREATE DATABASE $old");
$node->safe_psql('postgres', 'CREATE ROLE tpl_reader; CREATE ROLE other_super SUPERUSER');
sql($db, 'CREATE EXTENSION querator');

# --- the templates: members of the extension, owned like querator_data, empty, private
is(sql($db, q{
	SELECT string_agg(c.relname || ' ' || (c.relowner = n.nspowner) || ' ' || coalesce(c.relacl::text, '-')
	                  || ' ' || coalesce(c.reloptions::text, '-'), ', ' ORDER BY c.relname)
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
	 WHERE n.nspname = 'querator_data' AND c.relkind = 'r'}),
	'dead_template true - -, items_template true - -, leases_template true - -, scheduled_template true - -',
	'four templates, members of the extension, owned by the owner of querator_data, no grants, no storage parameters');
is(sql($db, join(' UNION ALL ', map { "SELECT count(*) FROM querator_data.${_}_template" } @kinds)), "0\n0\n0\n0",
	'the templates hold no rows');
is(sql($db, 'SELECT count(*) FROM querator.queues_list()') . ' ' . sql($db, 'SELECT count(*) FROM querator.stats'),
	'0 0', 'no queue is listed, no statistics row');
my ($ret, $out, $err) = $node->psql($db, "SELECT * FROM querator.storage_items_list('items')");
like($err, qr/queue does not exist; no such queue named 'items'/, 'a template is no queue');
sql($db, 'GRANT USAGE ON SCHEMA querator TO tpl_reader');
($ret, $out, $err) = $node->psql($db, 'SET ROLE tpl_reader; SELECT * FROM querator_data.items_template');
like($err, qr/permission denied for schema querator_data/, 'a role without grants cannot reach the templates');
sql($db, 'GRANT USAGE ON SCHEMA querator_data TO tpl_reader');
($ret, $out, $err) = $node->psql($db, 'SET ROLE tpl_reader; SELECT * FROM querator_data.items_template');
like($err, qr/permission denied for table items_template/, '... nor read them with only the schema');
sql($db, 'REVOKE USAGE ON SCHEMA querator_data FROM tpl_reader');

# --- a queue's tables are those the 0.1.0 library created
sql($db, "SELECT querator.queues_create('cmp', partitions => 2)");
my $id = sql($db, "SELECT id FROM querator.queues WHERE name = 'cmp'");
sql($db, queue_tables_ddl_0_1_0(map { ($_ => $_ eq 'dead' ? 'querator_data.q999999_dead' : "querator_data.q999999_p0_$_") } @kinds));
# ... as the upgrade scripts changed them since: 0.3.0 drops the lease_deadline index.
sql($db, 'DROP INDEX querator_data.q999999_p0_leases_lease_deadline_idx');
for my $kind (@kinds)
{
	my ($new, $v010) = $kind eq 'dead' ? ("q${id}_dead", 'q999999_dead') : ("q${id}_p0_$kind", "q999999_p0_$kind");
	my $shape = shape($db, $new);
	like($shape, qr/^column 001 id bigint not null/m, "$kind: the shape of $new is read");
	is($shape, shape($db, $v010), "$kind: a clone of the template has the shape of the 0.1.0 table (catalogs)");
	is($shape, shape($db, "${kind}_template"), "$kind: ... and of its template");
	is(dump_of($db, $new), dump_of($db, $v010), "$kind: pg_dump shows the clone as the 0.1.0 table");
	is(shape($db, "q${id}_p1_$kind"), $shape, "$kind: the tables of every partition are alike") unless $kind eq 'dead';
}
sql($db, 'DROP TABLE ' . join(', ', map { $_ eq 'dead' ? 'querator_data.q999999_dead' : "querator_data.q999999_p0_$_" } @kinds));
is(sql($db, "SELECT data_type || ' ' || increment_by || ' ' || max_value || ' ' || cache_size || ' ' || cycle
	FROM pg_sequences WHERE schemaname = 'querator_data' AND sequencename = 'q${id}_seq'"),
	'bigint 1 281474976710655 1 false', 'the id sequence is the 0.1.0 one (48 bits, no cache)');

# --- a 0.1.0 database: the new library refuses to create queue tables until ALTER EXTENSION UPDATE
sql($old, "CREATE EXTENSION querator VERSION '0.1.0'");
with_0_1_0_queue_tables($node, $old, "SELECT querator.queues_create('before')");
for my $call ("SELECT querator.queues_create('refused')", "SELECT querator.queues_update('before', partitions => 2)")
{
	($ret, $out, $err) = $node->psql($old, "\\set VERBOSITY verbose\n$call");
	like($err, qr/ERROR:  55000: queue tables cannot be created; the schema of the extension querator is older than its library \(\d+\.\d+\.\d+\)/,
		"at 0.1.0: $call is refused (55000)");
	like($err, qr/HINT:  Run ALTER EXTENSION querator UPDATE in this database\./, '... with the hint to update');
}
is(sql($old, q{SELECT querator.queue_produce('before', 'x'::text) > 0;
	SELECT count(*) FROM querator.queue_lease('before', 'c', 10)}), "t\n1", 'at 0.1.0: its queues still work');
is(sql($old, "SELECT count(*) FROM querator.queues"), '1', 'nothing was left of the refused create');
# Another superuser updates: the templates are still owned like querator_data's tables.
sql($old, 'SET ROLE other_super; ALTER EXTENSION querator UPDATE');
is(sql($old, q{SELECT string_agg(DISTINCT c.relowner::regrole::text, ',') = (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'querator_data')
	FROM pg_class c WHERE c.relnamespace = 'querator_data'::regnamespace AND c.relname LIKE '%\_template'}),
	't', 'an update run by another superuser leaves the templates to the owner of querator_data');
sql($old, "SELECT querator.queues_create('after'); SELECT querator.queues_update('before', partitions => 2)");
my $before_id = sql($old, "SELECT id FROM querator.queues WHERE name = 'before'");
my $after_id = sql($old, "SELECT id FROM querator.queues WHERE name = 'after'");
for my $kind (qw(items leases scheduled))
{
	my $shape = shape($old, "q${before_id}_p0_$kind");
	is(shape($old, "q${before_id}_p1_$kind"), $shape, "$kind: a partition added after the update is like the 0.1.0 one");
	is(shape($old, "q${after_id}_p0_$kind"), $shape, "$kind: a queue created after the update is like the 0.1.0 one");
}
is(shape($old, "q${after_id}_dead"), shape($old, "q${before_id}_dead"), 'dead: alike before and after the update');

$node->stop;
done_testing();
