# Deliveries per second to a local receiver (test/http_sink.py, /ok) with 1
# and 64 concurrent transfers: 2000 items each, produced up front, timed from
# the first request to the queue drained. Reported as notes; asserts only
# that every item arrived.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;
use WebhookSink;
use Time::HiRes qw(time usleep);

my $items = 2000;
my $node = querator_node('webhook_throughput', sink_conf() . "log_statement = none\n");
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
	my $t0 = time;
	sql(qq{SELECT querator.queue_resume('$q')});
	ok(defined poll_until($node, $db,
		"SELECT NOT EXISTS (SELECT 1 FROM querator.storage_items_list('$q', NULL, 1))", 't', 120, 20),
		"concurrency $concurrency: the queue drains");
	my $elapsed = time - $t0;
	my %seen = map { $_->{body} => 1 } sink_requests($sink);
	is(scalar keys %seen, $items, "concurrency $concurrency: every item arrived");
	note(sprintf('webhook throughput, concurrency %d: %d items in %.2f s = %.0f deliveries/s',
		$concurrency, $items, $elapsed, $items / $elapsed));
	stop_sink($sink);
}

$node->stop;
done_testing();
