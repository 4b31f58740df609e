# Webhook delivery of a batch: every item arrives once with its headers and
# payload, the queue drains, webhook_status() counts it; extra headers from
# the queue; a queue whose url is removed stops delivering.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;
use WebhookSink;
use Time::HiRes qw(time);

my $node = querator_node('webhook_delivery', sink_conf());
my $db = 'postgres';
sub sql { return $node->safe_psql($db, $_[0]); }

my $sink = start_sink();
my $url = sink_url($sink, '/ok');

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');

sql(qq{SELECT querator.queues_create('hooks', webhook_url => '$url',
    webhook_headers => '{"Authorization": "Bearer s3cret", "X-Querator-Id": "spoofed"}',
    webhook_concurrency => 4)});
sql(q{SELECT querator.queue_produce('hooks', array_agg(convert_to('{"n": ' || g || '}', 'UTF8')),
    array_agg('kind-' || g), array_agg('ref-' || g), encoding => 'application/json')
  FROM generate_series(1, 100) g});

ok(defined poll_until($node, $db,
	q{SELECT count(*) = 0 FROM querator.storage_items_list('hooks', NULL, 1000)}, 't', 30),
	'the queue drains');
my @requests = sink_requests($sink);
is(scalar @requests, 100, '100 requests arrived');
my %by_id;
$by_id{ $_->{headers}{'x-querator-id'} }++ for @requests;
is(scalar keys %by_id, 100, 'each item once (distinct X-Querator-Id)');

my ($r) = grep { $_->{body} eq '{"n": 7}' } @requests;
ok($r, 'payload is the body');
is($r->{method}, 'POST', 'POST');
is($r->{headers}{'content-type'}, 'application/json', 'Content-Type is the encoding');
is($r->{headers}{'x-querator-queue'}, 'hooks', 'X-Querator-Queue');
is($r->{headers}{'x-querator-kind'}, 'kind-7', 'X-Querator-Kind');
is($r->{headers}{'x-querator-reference'}, 'ref-7', 'X-Querator-Reference');
is($r->{headers}{'x-querator-attempt'}, '1', 'X-Querator-Attempt is 1 on the first delivery');
like($r->{headers}{'x-querator-id'}, qr/^\d+$/, 'X-Querator-Id is the item id, not the queue header');
is($r->{headers}{authorization}, 'Bearer s3cret', 'extra header from webhook_headers');
like($r->{headers}{'user-agent'}, qr{^querator/\d+\.\d+\.\d+$}, 'user agent names the version');
is(sql(q{SELECT count(*) FROM querator.storage_dead_list('hooks')}), '0', 'nothing dead-lettered');

is(sql(q{SELECT deliveries, failures, last_status, last_error IS NULL, last_delivery_at IS NOT NULL, in_flight
         FROM querator.webhook_status() WHERE queue_name = 'hooks'}),
	'100|0|200|t|t|0', 'webhook_status counts the deliveries');

# Produced one by one, each in its own transaction: delivered promptly, not at the next idle round.
my $t0 = time;
sql(q{SELECT querator.queue_produce('hooks', 'single')});
ok(defined poll_until($node, $db,
	q{SELECT count(*) = 0 FROM querator.storage_items_list('hooks', NULL, 1000)}, 't', 10, 10),
	'a single item is delivered');
my $took = time - $t0;
ok($took < 10, 'delivered within seconds of its produce, not at the 60 s idle round');

# A new webhook queue is delivered without waiting for an idle round.
sql(qq{SELECT querator.queues_create('late', webhook_url => '$url')});
sql(q{SELECT querator.queue_produce('late', 'x')});
ok(defined poll_until($node, $db,
	q{SELECT count(*) = 0 FROM querator.storage_items_list('late', NULL, 10)}, 't', 5, 20),
	'a queue created after the worker started is delivered');

# url removed: items stay for consumers.
sql(q{SELECT querator.queues_update('late', webhook_url => '')});
sql(q{SELECT querator.queue_produce('late', 'stays')});
sleep 1;
is(sql(q{SELECT count(*) FROM querator.storage_items_list('late', NULL, 10)}), '1',
	'without webhook_url the item waits for a consumer');

# Paused: nothing delivered until resumed.
sql(q{SELECT querator.queue_pause('hooks')});
sql(q{SELECT querator.queue_produce('hooks', 'paused')});
sleep 1;
is(sql(q{SELECT count(*) FROM querator.storage_items_list('hooks', NULL, 10)}), '1', 'a paused queue is not delivered');
sql(q{SELECT querator.queue_resume('hooks')});
ok(defined poll_until($node, $db,
	q{SELECT count(*) = 0 FROM querator.storage_items_list('hooks', NULL, 10)}, 't', 5, 20),
	'delivered once resumed');

stop_sink($sink);
$node->stop;
done_testing();
