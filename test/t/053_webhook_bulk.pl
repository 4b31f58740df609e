# A backlog delivered in bulk: 2000 items produced up front while the queue is
# paused, then delivered to a local receiver (test/http_sink.py, /ok) with 1
# and with 64 concurrent transfers; every item arrives and the queue drains.
# Deliveries per second are a figure: bench/run reports them (bench/README.md).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;
use WebhookSink;

my $items = 2000;
my $node = querator_node('webhook_bulk', sink_conf() . "log_statement = none\n");
my $db = 'postgres';
sub sql { return $node->safe_psql($db, $_[0]); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');

for my $concurrency (1, 64)
{
	my $sink = start_sink();
	my $url = sink_url($sink, '/ok');
	my $q = "tp$concurrency";
	sql(qq{SELECT querator.queues_create('$q', webhook_url => '$url', webhook_concurrency => $concurrency)});
	sql(qq{SELECT querator.queue_pause('$q')});
	sql(qq{SELECT querator.queue_produce('$q', array_agg(convert_to('{"n": ' || g || '}', 'UTF8')),
	        encoding => 'application/json') FROM generate_series(1, $items) g GROUP BY g / 1000});
	sql(qq{SELECT querator.queue_resume('$q')});
	ok(defined poll_until($node, $db,
		"SELECT NOT EXISTS (SELECT 1 FROM querator.storage_items_list('$q', NULL, 1))", 't', 120, 20),
		"concurrency $concurrency: the queue drains");
	my %seen = map { $_->{body} => 1 } sink_requests($sink);
	is(scalar keys %seen, $items, "concurrency $concurrency: every item arrived");
	stop_sink($sink);
}

$node->stop;
done_testing();
