# Upgrade from the released 0.1.0 with data in the queues: a database created
# with CREATE EXTENSION querator VERSION '0.1.0' (the frozen script, run by the
# current library, as after a package upgrade) holds items in every state;
# ALTER EXTENSION querator UPDATE keeps every item with its attributes, leases
# taken before the upgrade still complete, and the schema afterwards is the
# same as a fresh install's.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('upgrade');
my ($old, $fresh) = ('qold', 'qfresh');

sub sql { my ($db, $q) = @_; return $node->safe_psql($db, $q); }

my $current = sql('postgres', "SELECT default_version FROM pg_available_extensions WHERE name = 'querator'");
my @versions = split /\n/, sql('postgres',
	"SELECT version FROM pg_available_extension_versions WHERE name = 'querator' ORDER BY string_to_array(version, '.')::int[]");
is($versions[0], '0.1.0', 'the released 0.1.0 is installable');
is($versions[-1], $current, "the newest installable version is the default ($current)");

$node->safe_psql('postgres', "CREATE DATABASE $old");
$node->safe_psql('postgres', "CREATE DATABASE $fresh");
$node->safe_psql('postgres', 'CREATE ROLE upgrade_consumer');
sql($old, "CREATE EXTENSION querator VERSION '0.1.0'");
is(sql($old, "SELECT extversion FROM pg_extension WHERE extname = 'querator'"), '0.1.0', 'installed at 0.1.0');

# The same queues in both databases, created in the same order, so that their
# storage tables (named by queue id) can be compared one to one.
my $queues_sql = q{
	GRANT USAGE ON SCHEMA querator TO upgrade_consumer;
	SELECT querator.queues_create('jobs_dead', lease_timeout => '1 hour');
	SELECT querator.queues_create('jobs', lease_timeout => '1 hour', expire_timeout => '1 day', max_attempts => 3,
	                              dead_queue => 'jobs_dead', reference => 'r', partitions => 3);
	SELECT querator.queues_create('own', lease_timeout => '1 hour');
	SELECT querator.queues_create('hook', lease_timeout => '1 hour',
	                              webhook_url => 'http://192.0.2.1:9/never', webhook_timeout => '1 second');
	SELECT querator.queue_pause('hook');
	SELECT querator.queue_grant('jobs', 'upgrade_consumer', 'consume');
};
# In the 0.1.0 database, with the tables the 0.1.0 library created.
with_0_1_0_queue_tables($node, $old, $queues_sql);
# Items in every state: ready (bytea, text, jsonb, kinds and references),
# leased, scheduled, in a dead queue, a queue's own dead letters, webhook items.
sql($old, q{
	SELECT querator.queue_produce('jobs', ARRAY(SELECT 'j' || g FROM generate_series(1, 30) g),
	                              kinds => ARRAY(SELECT 'k' || g % 3 FROM generate_series(1, 30) g),
	                              item_references => ARRAY(SELECT 'ref-' || g FROM generate_series(1, 30) g));
	SELECT querator.queue_produce('jobs', '{"n": 1}'::jsonb, kind => 'json');
	SELECT querator.queue_produce('jobs', '\x00ff'::bytea, kind => 'bin');
	SELECT querator.queue_produce('jobs', ARRAY['s1', 's2']::text[], enqueue_at => now() + interval '12 hours');
	SELECT count(*) FROM querator.queue_lease('jobs', 'before-upgrade', 5);
	SELECT querator.queue_retry('jobs', ARRAY(SELECT id FROM querator.queue_lease('jobs', 'killer', 2)), dead => true);
	SELECT querator.queue_produce('own', ARRAY['o1', 'o2', 'o3', 'o4']::text[]);
	SELECT querator.queue_retry('own', ARRAY(SELECT id FROM querator.queue_lease('own', 'killer', 2)), dead => true);
	SELECT querator.queue_produce('hook', ARRAY['h1', 'h2']::text[]);
});

my $state_sql = queue_state_sql();
my $before = sql($old, $state_sql);
my %count;
$count{$_}++ for map { (split / /)[0] } split /\n/, $before;
is_deeply(\%count, { queue => 4, grant => 1, item => 36, scheduled => 2, dead => 2 },
	'before the upgrade: 4 queues, 1 grant, 36 ready/leased items (2 of them dead-queued), 2 scheduled, 2 dead letters');

# The new library serves a 0.1.0 database until ALTER EXTENSION ... UPDATE:
# the worker runs, and a produce/lease/complete cycle works (rolled back, so the
# state above is what the upgrade must keep).
ok(wait_for_workers($node, $old, 1, 15), 'a worker serves the 0.1.0 database');
is(sql($old, q{
	BEGIN;
	SELECT querator.queue_produce('own', 'cycle'::text) > 0;
	SELECT querator.queue_complete('own', ARRAY(SELECT id FROM querator.queue_lease('own', 'pre', 10)));
	ROLLBACK;
	SELECT 'ok'}), "t\n3\nok", 'produce, lease and complete work on the 0.1.0 schema with the new library');

sql($old, 'ALTER EXTENSION querator UPDATE');
is(sql($old, "SELECT extversion FROM pg_extension WHERE extname = 'querator'"), $current,
	"ALTER EXTENSION querator UPDATE goes to $current");
is(sql($old, $state_sql), $before, 'every queue, grant and item is still there with all its attributes');
# 0.6.0 split every partition into segments: the rows moved out of the partition's own tables.
sub rows_in_only
{
	my ($relname_pattern) = @_;
	return sql($old, qq{SELECT count(*) || ' tables, ' || coalesce(sum((xpath('/row/n/text()', query_to_xml(
		format('SELECT count(*) AS n FROM ONLY querator_data.%I', relname), false, true, '')))[1]::text::int), 0) || ' rows'
		FROM pg_class WHERE relnamespace = 'querator_data'::regnamespace AND relname ~ '$relname_pattern'});
}
my $parents = rows_in_only('^q[0-9]+_p[0-9]+_(items|leases)$');
like($parents, qr/^\d+ tables, 0 rows$/, "the update moved every item and lease out of the partitions' own tables ($parents)");
like(rows_in_only('^q[0-9]+_p[0-9]+_(items|leases)_s0$'), qr/^\d+ tables, [1-9]\d+ rows$/, 'into their segment 0');

# Leases taken before the upgrade complete afterwards; the rest still works.
is(sql($old, "SELECT querator.queue_complete('jobs', ARRAY(SELECT id FROM querator.storage_items_list('jobs', NULL, 10000) WHERE client_id = 'before-upgrade'))"),
	'5', 'the 5 leases taken before the upgrade complete after it');
# One lease takes from one partition: lease until nothing is left.
my $leased = 0;
while ((my $n = sql($old, "SET ROLE upgrade_consumer; SELECT count(*) FROM querator.queue_lease('jobs', 'after', 1000)")) > 0)
{
	$leased += $n;
}
is($leased, 25, 'a consumer granted before the upgrade leases the 25 ready items');
is(sql($old, "SELECT querator.queue_redrive('jobs_dead')"), '2', 'dead-queue items redrive to their source queue');
is(sql($old, "SELECT querator.queue_redrive('own')"), '2', 'dead letters redrive');
sql($old, "SELECT querator.queues_update('jobs', lease_timeout => '1 second')");
sql($old, "SELECT count(*) FROM querator.queue_lease('jobs', 'short', 1000)");
ok(defined poll_until($node, $old,
	"SELECT count(*) FROM querator.storage_items_list('jobs', NULL, 10000) WHERE client_id = 'short'", '0', 20),
	'the worker expires leases after the upgrade');

# Tables made after the upgrade come from the templates of the upgrade script:
# a new queue, and a new partition of a queue created before it.
my $later_sql = q{
	SELECT querator.queues_create('later', lease_timeout => '1 hour', partitions => 2);
	SELECT querator.queues_update('own', partitions => 2);
};
sql($old, $later_sql);

# The schema after the upgrade is the schema of a fresh install: every member
# object of the extension, function definitions and settings, privileges,
# tables, indexes and views, and each queue's storage tables (of the queues
# created before the upgrade by the 0.1.0 library and after it from the
# templates, against the same queues of a fresh install).
sql($fresh, 'CREATE EXTENSION querator');
sql($fresh, $queues_sql);
sql($fresh, $later_sql);
my $schema_sql = q{
	WITH ext AS (SELECT oid, extconfig FROM pg_extension WHERE extname = 'querator'),
	rel AS (
		SELECT c.oid, n.nspname, c.relname, c.relkind, c.relacl, c.reloptions,
		       regexp_replace(n.nspname || '.' || c.relname, '^querator_data\.q[0-9]+_', 'querator_data.q_') AS name
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname IN ('querator', 'querator_data'))
	SELECT string_agg(line, E'\n' ORDER BY line) FROM (
		SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid) AS line
		  FROM pg_depend d, ext WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
		UNION ALL
		SELECT 'function ' || p.oid::regprocedure || ' acl=' || coalesce(p.proacl::text, '-') || E'\n'
		       || pg_get_functiondef(p.oid)
		  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'querator'
		UNION ALL
		SELECT 'schema ' || nspname || ' owner=' || nspowner::regrole || ' acl=' || coalesce(nspacl::text, '-')
		  FROM pg_namespace WHERE nspname IN ('querator', 'querator_data')
		UNION ALL
		SELECT 'relation ' || name || ' kind=' || relkind::text || ' acl=' || coalesce(relacl::text, '-')
		       || ' options=' || coalesce(reloptions::text, '-')
		  FROM rel
		UNION ALL
		SELECT 'column ' || rel.name || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
		       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		       || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
		  FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
		  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
		UNION ALL
		SELECT 'index ' || regexp_replace(pg_get_indexdef(i.indexrelid), 'q[0-9]+_', 'q_', 'g')
		  FROM rel JOIN pg_index i ON i.indrelid = rel.oid
		UNION ALL
		SELECT 'constraint ' || rel.name || ' ' || regexp_replace(pg_get_constraintdef(co.oid), 'q[0-9]+_', 'q_', 'g')
		  FROM rel JOIN pg_constraint co ON co.conrelid = rel.oid
		UNION ALL
		SELECT 'view ' || rel.name || ' ' || pg_get_viewdef(rel.oid) FROM rel WHERE rel.relkind = 'v'
		UNION ALL
		SELECT 'dumped ' || c::regclass::text FROM ext, unnest(ext.extconfig) c
	) lines};
my $upgraded_schema = sql($old, $schema_sql);
my $fresh_schema = sql($fresh, $schema_sql);
cmp_ok(length($fresh_schema), '>', 1000, 'the schema description is not empty');
is($upgraded_schema, $fresh_schema, 'the upgraded schema is the same as a fresh install of ' . $current);

# Every queue table has the shape of its template, in both databases: what an
# upgrade script changes in a template it must change in every queue's table.
my $unlike_template_sql = 'WITH s AS (' . table_shapes_sql() . q{),
	q AS (SELECT relname, shape, substring(relname FROM '^q[0-9]+_(?:p[0-9]+_)?(items|leases|scheduled|dead)(?:_s[0-9]+)?$') AS kind
	        FROM s WHERE relname !~ '_template$')
	SELECT count(*) || ' queue tables, unlike their template: '
	       || coalesce(string_agg(q.relname, ', ' ORDER BY q.relname) FILTER (WHERE tpl.shape IS DISTINCT FROM q.shape), 'none')
	  FROM q LEFT JOIN s tpl ON tpl.relname = q.kind || '_template'};
# 32 tables of 9 partitions and 5 queues, and 3 segments of items and of leases per partition (54)
is(sql($old, $unlike_template_sql), '86 queue tables, unlike their template: none',
	'upgraded: the tables of queues created by 0.1.0 and after the upgrade have the shape of their templates');
is(sql($fresh, $unlike_template_sql), '86 queue tables, unlike their template: none',
	'fresh install: every queue table has the shape of its template');

$node->stop;
done_testing();
