# Webhook delivery survives its failures: a receiver that is down (connection
# refused) gets the items once it is up; the worker killed with SIGKILL in
# the middle of deliveries (a crash restart) loses nothing: every item is
# delivered at least once and the queue drains.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;
use WebhookSink;
use Time::HiRes qw(time usleep);

my $node = querator_node('webhook_recovery', sink_conf() . "restart_after_crash = on\n");
my $db = 'postgres';
sub sql { return $node->safe_psql($db, $_[0]); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');

# --- receiver down, then up.
my $port = free_port();
my $url = sink_url($port, '/ok');
sql(qq{SELECT querator.queues_create('down', webhook_url => '$url', webhook_backoff => '200 ms',
    webhook_backoff_max => '500 ms')});
sql(q{SELECT querator.queue_produce('down', array_agg('d' || g)) FROM generate_series(1, 5) g});
ok(defined poll_until($node, $db,
	q{SELECT failures >= 10 FROM querator.webhook_status() WHERE queue_name = 'down'}, 't', 10),
	'deliveries fail while the receiver is down');
like(sql(q{SELECT last_error FROM querator.webhook_status() WHERE queue_name = 'down'}),
	qr/connect/i, 'the last error says the connection failed');
is(sql(q{SELECT count(*) FROM querator.storage_dead_list('down')}), '0', 'unlimited attempts: nothing dead');
my $sink = start_sink(port => $port);
ok(queue_drained($node, $db, 'down', 10), 'delivered once the receiver is up');
my %bodies = map { $_->{body} => 1 } sink_requests($sink);
is(join(',', sort keys %bodies), 'd1,d2,d3,d4,d5', 'every item arrived');
stop_sink($sink);

# --- the worker killed mid-delivery.
$sink = start_sink();
$url = sink_url($sink, '/slow/100');
sql(qq{SELECT querator.queues_create('crash', webhook_url => '$url', webhook_concurrency => 8,
    lease_timeout => '1 s', webhook_timeout => '1 s', webhook_backoff => '200 ms')});
sql(q{SELECT querator.queue_produce('crash', array_agg('c' || g)) FROM generate_series(1, 300) g});
ok(defined poll_until($node, $db, q{SELECT in_flight > 0 FROM querator.webhook_status() WHERE queue_name = 'crash'},
	't', 10, 10), 'deliveries are in flight');
my $start = time;
usleep(100_000) while scalar(sink_requests($sink)) < 40 && time - $start < 20;
my ($pid) = worker_pids($node, $db);
ok($pid, 'found the worker');
kill 'KILL', $pid;
note('killed the worker (pid ' . $pid . ') after ' . scalar(sink_requests($sink)) . ' requests');
ok(wait_for_server($node, 60), 'the cluster restarted');
ok(wait_for_workers($node, $db, 1, 30), 'a worker runs again');
ok(queue_drained($node, $db, 'crash', 60), 'the queue drains after the restart');
my @requests = sink_requests($sink);
my %seen;
$seen{ $_->{body} }++ for @requests;
my @missing = grep { !$seen{"c$_"} } 1 .. 300;
is(scalar @missing, 0, 'every item was delivered at least once') or diag("missing: @missing");
my $dups = scalar(@requests) - scalar(keys %seen);
note("requests: " . scalar(@requests) . ", duplicates (redelivered after the crash): $dups");
is(sql(q{SELECT count(*) FROM querator.storage_dead_list('crash')}), '0', 'nothing dead-lettered');
stop_sink($sink);

$node->stop;
done_testing();
