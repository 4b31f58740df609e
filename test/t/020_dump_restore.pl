# pg_dump of a database with queues, restored into new databases (plain SQL
# through psql, and the custom format through pg_restore), gives the same
# queues, items in every state, grants and pause state; the restored queues
# work (produce, lease, complete, new queues) and the worker serves them.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('dump_restore');
my $src = 'qsrc';

sub sql { my ($db, $q) = @_; return $node->safe_psql($db, $q); }

# Leases until nothing is left (one lease takes from one partition); returns the count.
sub lease_all
{
	my ($db, $queue, $client) = @_;
	my $total = 0;
	while ((my $n = sql($db, "SELECT count(*) FROM querator.queue_lease('$queue', '$client', 1000)")) > 0)
	{
		$total += $n;
	}
	return $total;
}

$node->safe_psql('postgres', "CREATE DATABASE $src");
# Roles are cluster-wide: the grants (stored by role name) find them again after the restore.
$node->safe_psql('postgres', 'CREATE ROLE dump_producer; CREATE ROLE dump_consumer; CREATE ROLE dump_owner');
sql($src, 'CREATE EXTENSION querator');
sql($src, 'GRANT USAGE ON SCHEMA querator TO dump_producer, dump_consumer, dump_owner');
sql($src, q{GRANT EXECUTE ON FUNCTION querator.queues_create(text, interval, interval, integer, text, text, integer,
    text, jsonb, interval, integer, interval, interval) TO dump_owner});

# A dead queue, a queue with 3 partitions feeding it, a queue with its own
# dead letters (paused), and a queue created by another role, with grants.
sql($src, q{
	SELECT querator.queues_create('jobs_dead', lease_timeout => '1 hour');
	SELECT querator.queues_create('jobs', lease_timeout => '1 hour', expire_timeout => '1 day', max_attempts => 3,
	                              dead_queue => 'jobs_dead', reference => 'ref "x"', partitions => 3);
	SELECT querator.queues_create('own', lease_timeout => '1 hour');
	SET ROLE dump_owner;
	SELECT querator.queues_create('a";drop_table_x;--', lease_timeout => '1 hour');
	SELECT querator.queue_produce('a";drop_table_x;--', 'owned'::text);
	RESET ROLE;
	SELECT querator.queue_grant('jobs', 'dump_producer', 'produce');
	SELECT querator.queue_grant('jobs', 'dump_consumer', 'consume');
	SELECT querator.queue_grant('own', 'dump_consumer', 'admin');
});
# Items in every state: ready, leased, scheduled, in a dead queue, in a dead-letter table.
sql($src, q{
	SELECT querator.queue_produce('jobs', ARRAY(SELECT 'j' || g FROM generate_series(1, 30) g), kinds => NULL);
	SELECT querator.queue_produce('jobs', ARRAY(SELECT 'k' || g FROM generate_series(1, 20) g));
	SELECT querator.queue_produce('jobs', '{"n": 1}'::jsonb, kind => 'json');
	SELECT querator.queue_produce('jobs', '\x00ff'::bytea, kind => 'bin');
	SELECT querator.queue_produce('jobs', ARRAY['s1', 's2']::text[], enqueue_at => now() + interval '12 hours');
	SELECT count(*) FROM querator.queue_lease('jobs', 'before-dump', 5);
	SELECT querator.queue_retry('jobs', ARRAY(SELECT id FROM querator.queue_lease('jobs', 'killer', 2)), dead => true);
	SELECT querator.queue_produce('own', ARRAY['o1', 'o2', 'o3', 'o4']::text[]);
	SELECT querator.queue_retry('own', ARRAY(SELECT id FROM querator.queue_lease('own', 'killer', 2)), dead => true);
	SELECT count(*) FROM querator.queue_lease('own', 'before-dump', 1);
	SELECT querator.queue_pause('own');
});

my $state_sql = queue_state_sql();
my $before = sql($src, $state_sql);
my %count;
$count{$_}++ for map { (split / /)[0] } split /\n/, $before;
is_deeply(\%count, { queue => 4, grant => 3, item => 55, scheduled => 2, dead => 2 },
	'the source holds 4 queues, 3 grants, 55 ready/leased items, 2 scheduled, 2 dead letters');
is(sql($src, "SELECT count(*) FROM querator.storage_items_list('jobs', NULL, 10000) WHERE leased"), '5',
	'5 leased items in the source');
is(sql($src, "SELECT count(*) FROM querator.storage_items_list('jobs_dead')"), '2', '2 items in the dead queue');

# --- plain SQL dump, restored with psql in one transaction
my $tmp = PostgreSQL::Test::Utils::tempdir;
$node->command_ok([ 'pg_dump', '--dbname', $src, '--file', "$tmp/dump.sql" ], 'pg_dump (plain) succeeds');
$node->command_ok([ 'createdb', 'qplain' ], 'createdb qplain');
$node->command_ok([ 'psql', '-X', '-q', '--single-transaction', '-v', 'ON_ERROR_STOP=1', '--dbname', 'qplain',
		'--file', "$tmp/dump.sql" ], 'the dump restores with psql');
is(sql('qplain', $state_sql), $before, 'plain restore: same queues, grants and items (ids, payloads, leases, deadlines)');

# --- custom format, restored with pg_restore
$node->command_ok([ 'pg_dump', '--format=custom', '--dbname', $src, '--file', "$tmp/dump.custom" ],
	'pg_dump (custom) succeeds');
$node->command_ok([ 'createdb', 'qcustom' ], 'createdb qcustom');
$node->command_ok([ 'pg_restore', '--exit-on-error', '--single-transaction', '--dbname', 'qcustom',
		"$tmp/dump.custom" ], 'pg_restore succeeds');
is(sql('qcustom', $state_sql), $before, 'custom restore: same queues, grants and items');

# --- the restored database works
my $db = 'qplain';
ok(wait_for_workers($node, $db, 1, 15), 'a worker serves the restored database');
is(sql($db, "SELECT paused FROM querator.queues_info('own')"), 't', 'the paused queue is still paused');
is(sql($db, "SELECT count(*) FROM querator.queue_lease('own', 'after', 10)"), '0', '... and leases nothing');
sql($db, "SELECT querator.queue_resume('own')");
is(sql($db, "SELECT string_agg(convert_from(payload, 'UTF8'), ' ' ORDER BY id) FROM querator.queue_lease('own', 'after', 10)"),
	'o4', 'after resume it leases its ready item');
is(sql($db, "SELECT querator.queue_redrive('own')"), '2', 'its dead letters redrive');

my $max_id = sql($db, "SELECT max(id & ((1::bigint << 48) - 1)) FROM querator.storage_items_list('jobs', NULL, 10000)");
my $new_id = sql($db, "SELECT querator.queue_produce('jobs', 'new'::text)");
cmp_ok($new_id & ((1 << 48) - 1), '>', $max_id, 'a new item gets an id after the restored ones (the sequence was restored)');
is(lease_all($db, 'jobs', 'after'), 46,
	'lease takes every ready item, none of the 5 still leased');
is(sql($db, "SELECT querator.queue_complete('jobs', ARRAY(SELECT id FROM querator.storage_items_list('jobs', NULL, 10000) WHERE client_id = 'before-dump'))"),
	'5', 'the leases taken before the dump can be completed after the restore');
is(sql($db, "SELECT querator.queue_redrive('jobs_dead')"), '2', 'dead-queue items redrive to their source queue');
is(sql($db, "SELECT count(*) FROM querator.storage_items_list('jobs', NULL, 10000) WHERE NOT leased"), '2',
	'... which holds them as ready items');

# grants by role name
is(sql($db, "SET ROLE dump_producer; SELECT querator.queue_produce('jobs', 'p'::text) > 0"), 't',
	'the producer grant works after the restore');
my ($ret, $out, $err) = $node->psql($db, "SET ROLE dump_producer; SELECT * FROM querator.queue_lease('jobs', 'x', 1)");
like($err, qr/lacks the consume privilege on 'jobs'/, '... and still only produce');
is(sql($db, "SET ROLE dump_consumer; SELECT count(*) > 0 FROM querator.queue_lease('jobs', 'c', 1)"), 't',
	'the consumer grant works after the restore');
is(sql($db, "SET ROLE dump_owner; SELECT string_agg(queue_name, ',') FROM querator.queues_list()"),
	'a";drop_table_x;--', 'the owner of a queue still owns it (and sees only it)');
is(sql($db, q{SET ROLE dump_owner; SELECT count(*) FROM querator.queue_lease('a";drop_table_x;--', 'o', 1)}), '1',
	'... and can lease from it');

# a new queue in the restored database does not collide with the restored tables
sql($db, "SELECT querator.queues_create('fresh', lease_timeout => '1 hour')");
is(sql($db, "SELECT querator.queue_produce('fresh', 'f'::text)"), '1', 'a new queue works');

# The queue table templates are the extension's: not in the dump, made again by
# its CREATE EXTENSION, and a queue created after the restore is cloned from them.
open(my $fh, '<', "$tmp/dump.sql") or die "cannot read the dump: $!";
my $dump = do { local $/; <$fh> };
close($fh);
unlike($dump, qr/_template/, 'the dump holds no queue table template');
my $templates_sql = q{SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c
	JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
	WHERE c.relnamespace = 'querator_data'::regnamespace};
is(sql($db, $templates_sql), sql($src, $templates_sql), 'the restored database has the templates of the source');
my $fresh_id = sql($db, "SELECT id FROM querator.queues WHERE name = 'fresh'");
my $shape_sql = 'SELECT shape FROM (' . table_shapes_sql() . ') s WHERE relname = ';
is(sql($db, "$shape_sql 'q${fresh_id}_p0_items'"), sql($db, "$shape_sql 'items_template'"),
	'the new queue\'s tables are clones of the restored templates');
my $restored_id = sql($db, "SELECT id FROM querator.queues WHERE name = 'jobs'");
is(sql($db, "$shape_sql 'q${fresh_id}_p0_items'"), sql($db, "$shape_sql 'q${restored_id}_p0_items'"),
	'... alike the restored queue tables');

# the worker serves the restored queues: a scheduled item comes due, a short lease expires
sql($db, "SELECT querator.queues_update('jobs', lease_timeout => '1 second')");
sql($db, "SELECT querator.queue_produce('jobs', 'soon'::text, enqueue_at => now() + interval '1 second')");
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_items_list('jobs', NULL, 10000) WHERE payload_preview = 'soon'",
	'1', 15), 'the worker promotes a scheduled item of a restored queue');
sql($db, "SELECT count(*) FROM querator.queue_lease('jobs', 'short', 1)");
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_items_list('jobs', NULL, 10000) WHERE client_id = 'short'", '0', 15),
	'the worker expires a lease on a restored queue');

# the custom-format copy works too
is(lease_all('qcustom', 'jobs', 'after'), 45,
	'the pg_restore copy leases the same 45 ready items');
# and the source was not touched by any of it
is(sql($src, $state_sql), $before, 'the source database is unchanged');

$node->stop;
done_testing();
