# A paused queue stays paused across a restart (and an immediate stop): lease
# returns nothing, produce still works, the worker still expires leases and
# promotes scheduled items, and after resume everything is delivered once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('pause_restart');
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');

sql("SELECT querator.queues_create('paused', lease_timeout => '2 seconds', partitions => 2)");
sql("SELECT querator.queues_create('running', lease_timeout => '1 hour')");
sql("SELECT querator.queue_produce('paused', ARRAY['a', 'b', 'c']::text[])");
sql("SELECT querator.queue_produce('running', ARRAY['r1', 'r2']::text[])");
# one lease taken before the pause, to expire while paused
is(sql("SELECT count(*) FROM querator.queue_lease('paused', 'before', 1)"), '1', 'one item leased before the pause');
sql("SELECT querator.queue_pause('paused')");
is(sql("SELECT count(*) FROM querator.queue_lease('paused', 'c1', 10)"), '0', 'paused: lease returns nothing');

$node->restart;
ok(wait_for_workers($node, $db, 1, 10), 'the worker is back after the restart');

is(sql("SELECT paused FROM querator.queues_info('paused')"), 't', 'queues_info shows the queue still paused');
is(sql("SELECT bool_and(paused) FROM querator.stats WHERE queue_name = 'paused'"), 't', '... and so does the stats view');
is(sql("SELECT paused FROM querator.queues_info('running')"), 'f', 'the other queue is not paused');
is(sql("SELECT count(*) FROM querator.queue_lease('paused', 'c1', 10)"), '0', 'lease still returns nothing after the restart');
is(sql("SELECT count(*) FROM querator.queue_lease('paused', 'c1', 10, wait => '0.5 seconds')"), '0',
	'... also with wait');
is(sql("SELECT count(*) FROM querator.queue_lease('running', 'c1', 10)"), '2', 'the other queue leases');

# produce works while paused; the worker keeps doing its work on the paused queue
sql("SELECT querator.queue_produce('paused', 'd'::text)");
sql("SELECT querator.queue_produce('paused', 'e'::text, enqueue_at => now() + interval '1 second')");
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_items_list('paused') WHERE leased", '0', 15),
	'the lease taken before the pause expires while paused');
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_scheduled_list('paused')", '0', 15),
	'a scheduled item comes due while paused');
is(sql("SELECT sum(total) FROM querator.queue_stats('paused')"), '5', 'five items wait in the paused queue');
is(sql("SELECT count(*) FROM querator.queue_lease('paused', 'c1', 10)"), '0', 'and none is leased');

# an immediate stop (crash-like) keeps it paused too
$node->stop('immediate');
$node->start;
ok(wait_for_server($node, 60), 'the server is back after an immediate stop');
is(sql("SELECT paused FROM querator.queues_info('paused')"), 't', 'still paused after an immediate stop');
is(sql("SELECT count(*) FROM querator.queue_lease('paused', 'c1', 10)"), '0', 'still nothing to lease');

# resume: everything is delivered, each item once. The 2 s leases served their purpose
# above; from here a lease must outlive the loop below on a loaded machine.
sql("SELECT querator.queues_update('paused', lease_timeout => '1 hour')");
sql("SELECT querator.queue_resume('paused')");
is(sql("SELECT paused FROM querator.queues_info('paused')"), 'f', 'resumed');
my @got;
for (1 .. 5)
{
	my $out = sql("SELECT string_agg(convert_from(payload, 'UTF8'), ' ' ORDER BY id) FROM querator.queue_lease('paused', 'c2', 10)");
	push @got, split / /, $out if $out ne '';
}
is(join(' ', sort @got), 'a b c d e', 'after resume every item is leased, each once');
is(sql("SELECT querator.queue_complete('paused', ARRAY(SELECT id FROM querator.storage_items_list('paused') WHERE leased))"),
	'5', 'and completed');
is(sql("SELECT sum(total) + sum(total_leased) + sum(scheduled) FROM querator.queue_stats('paused')"), '0', 'the queue is empty');

# resumed state survives a restart as well
$node->restart;
ok(wait_for_workers($node, $db, 1, 10), 'the worker is back');
is(sql("SELECT paused FROM querator.queues_info('paused')"), 'f', 'still resumed after another restart');
sql("SELECT querator.queue_produce('paused', 'f'::text)");
is(sql("SELECT string_agg(convert_from(payload, 'UTF8'), ' ') FROM querator.queue_lease('paused', 'c3', 10)"), 'f',
	'and it works');

$node->stop;
done_testing();
