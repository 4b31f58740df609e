# Segments (docs/design.md, "Segments"): a partition's items live in a ring of
# child tables; the worker starts a new one every querator.segment_items items
# and empties drained ones with TRUNCATE, while a REPEATABLE READ snapshot pins
# the xmin horizon. Items keep their FIFO order across segments, nothing is
# lost, an item leased for long holds its segment (and only it) back, and the
# storage stays bounded where VACUUM could remove nothing.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use QueratorTap;

my $node = querator_node('segments', "querator.segment_items = 100\nautovacuum = off\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');
sql("SELECT querator.queues_create('seg', lease_timeout => '1 h')");
my $qid = sql("SELECT id FROM querator.queues WHERE name = 'seg'");

is(sql("SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'querator_data.q${qid}_p0_items'::regclass"),
	"q${qid}_p0_items_s0 q${qid}_p0_items_s1 q${qid}_p0_items_s2",
	'a new partition has querator.segments (3) segments of items');

# The segments' files: TRUNCATE gives a segment a new one.
sub filenodes
{
	return sql("SELECT string_agg(pg_relation_filenode(c.oid)::text, ' ' ORDER BY c.relname) FROM pg_class c
	            WHERE c.relname ~ '^q${qid}_p0_items_s[0-9]+\$'");
}
# Bytes of the items and leases segments with their indexes and TOAST.
sub segment_bytes
{
	return sql("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
	            WHERE c.relname ~ '^q${qid}_p0_(items|leases)_s[0-9]+\$'");
}

# A snapshot held for the whole test: VACUUM cannot remove any row deleted meanwhile.
my $holder = $node->background_psql($db);
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$holder->query_safe('SELECT count(*) FROM pg_class');
ok(sql("SELECT backend_xmin IS NOT NULL FROM pg_stat_activity WHERE state = 'idle in transaction'") eq 't',
	'a session holds a snapshot (the xmin horizon is pinned)');

# One item leased for an hour, in the first segment: it holds that segment back.
sql("SELECT querator.queue_produce('seg', 'held')");
my $held = sql("SELECT id FROM querator.queue_lease('seg', 'holder', 1)");
my $first_files = filenodes();

# Produce one item per transaction and consume it in order, in rounds, so
# the worker starts new segments and empties drained ones as it goes.
my ($produced, $in_order) = (0, 1);
my $bytes_after_first_rounds;
for my $round (1 .. 12)
{
	sql("DO \$\$ BEGIN FOR i IN 1..100 LOOP PERFORM querator.queue_produce('seg', '$round-' || i); COMMIT; END LOOP; END \$\$");
	$produced += 100;
	my $got = sql("SELECT string_agg(convert_from(payload, 'UTF8'), ' ' ORDER BY id) FROM querator.queue_lease('seg', 'c', 100)");
	my $want = join(' ', map { "$round-$_" } 1 .. 100);
	$in_order = 0 if $got ne $want;
	diag("round $round leased: $got") if $got ne $want;
	sql("SELECT querator.queue_complete('seg', array_agg(id)) FROM querator.storage_items_list('seg', NULL, 1000) WHERE leased AND id <> $held");
	usleep(300_000); # the worker's upkeep comes within a second of a rotation being due
	$bytes_after_first_rounds = segment_bytes() if $round == 4;
}
ok($in_order, 'every item came out in the order it was produced, across segments');
is(sql("SELECT count(*) FROM querator.storage_items_list('seg', NULL, 1000)"), '1', 'only the held item is left');

ok(defined poll_until($node, $db,
	"SELECT count(DISTINCT n) FILTER (WHERE n <> ALL (string_to_array('$first_files', ' '))) >= 2
	   FROM unnest(string_to_array((SELECT string_agg(pg_relation_filenode(c.oid)::text, ' ') FROM pg_class c
	        WHERE c.relname ~ '^q${qid}_p0_items_s[0-9]+\$'), ' ')) n", 't', 20, 200),
	'drained segments were emptied with TRUNCATE (new files) while the snapshot was held');
my $bytes_end = segment_bytes();
note("segment bytes after 4 rounds: $bytes_after_first_rounds, after 12: $bytes_end");
cmp_ok($bytes_end, '<=', $bytes_after_first_rounds * 1.5,
	'storage stays bounded under the pinned horizon (3x the churn, not 3x the bytes)');

# The held item's segment is the one that was current when it was produced: still its first file.
my $held_segment = sql("SELECT tableoid::regclass FROM querator_data.q${qid}_p0_items WHERE id = $held");
is(sql("SELECT count(*) FROM $held_segment"), '1', "the held item is still in its segment ($held_segment)");
is(sql("SELECT querator.queue_complete('seg', ARRAY[$held]::bigint[])"), '1', 'the held item completes');
sql("SELECT pg_sleep(1.5)");

# What an old snapshot sees of a truncated segment: nothing (TRUNCATE is not MVCC-safe; docs).
my $seen = $holder->query_safe("SELECT count(*) FROM querator_data.q${qid}_p0_items");
cmp_ok($seen, '<=', 1, 'the old snapshot sees truncated segments empty');
$holder->query_safe('COMMIT');
$holder->quit;

# Stats, lists and a restart still see every item across segments.
sql("SELECT querator.queue_produce('seg', 'after-' || i) FROM generate_series(1, 250) i");
is(sql("SELECT sum(total) FROM querator.queue_stats('seg')"), '250', 'queue_stats counts items in every segment');
$node->restart;
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs after a restart');
is(sql("SELECT string_agg(convert_from(payload, 'UTF8'), ' ' ORDER BY id) = string_agg('after-' || n, ' ' ORDER BY n)
        FROM (SELECT l.*, row_number() OVER (ORDER BY l.id) AS n FROM querator.queue_lease('seg', 'r', 1000) l) x"),
	't', 'after a restart the ring is read back from the tables and leases find every item in order');
sql("SELECT querator.queue_complete('seg', array_agg(id)) FROM querator.storage_items_list('seg', NULL, 1000)");

# One long transaction that produces across rotations (a bulk load) follows the
# current segment: its items spread over the ring instead of filling one segment.
sql("DO \$\$ BEGIN FOR i IN 1..300 LOOP PERFORM querator.queue_produce('seg', 'bulk-' || i);
     IF i % 100 = 0 THEN PERFORM pg_sleep(0.5); END IF; END LOOP; END \$\$");
cmp_ok(sql("SELECT count(DISTINCT tableoid) FROM querator_data.q${qid}_p0_items"), '>=', 2,
	'a transaction that produced across rotations wrote more than one segment');
is(sql("SELECT string_agg(convert_from(payload, 'UTF8'), ' ' ORDER BY id) = string_agg('bulk-' || n, ' ' ORDER BY n)
        FROM (SELECT l.*, row_number() OVER (ORDER BY l.id) AS n FROM querator.queue_lease('seg', 'b', 1000) l) x"),
	't', 'and its items are leased in the order they were produced');
sql("SELECT querator.queue_complete('seg', array_agg(id)) FROM querator.storage_items_list('seg', NULL, 1000)");
sql("SELECT querator.queues_delete('seg')");
is(sql("SELECT count(*) FROM pg_class WHERE relname ~ '^q${qid}_'"), '0', 'queues_delete drops every segment');

$node->stop;
done_testing();
