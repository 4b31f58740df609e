# Webhook failures: a 500 is retried with exponential backoff (the attempt
# header increments), max_attempts dead-letters with the last error kept, a
# hanging receiver times out, a closed connection is an error, and a slow
# endpoint does not hold up another queue.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;
use WebhookSink;
use Time::HiRes qw(time);

my $node = querator_node('webhook_failures', sink_conf());
my $db = 'postgres';
sub sql { return $node->safe_psql($db, $_[0]); }

my $sink = start_sink();
sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');

sub requests_for { my ($path) = @_; return grep { $_->{path} eq $path } sink_requests($sink); }

# --- retry after 500 with backoff: fails attempts 1 and 2, succeeds on 3.
my $url = sink_url($sink, '/fail-first/2');
sql(qq{SELECT querator.queues_create('flaky', webhook_url => '$url', webhook_backoff => '2 s',
    webhook_backoff_max => '1 min')});
sql(q{SELECT querator.queue_produce('flaky', 'f1')});
ok(queue_drained($node, $db, 'flaky', 40), 'delivered after two failures');
my @r = requests_for('/fail-first/2');
is(scalar @r, 3, 'three attempts');
is(join(',', map { $_->{headers}{'x-querator-attempt'} } @r), '1,2,3', 'the attempt header increments');
# A retried item is requeued under a new id, but X-Querator-Id is the id it was produced
# with (origin_id): the same on every attempt, so a receiver can deduplicate by it.
my %ids = map { $_->{headers}{'x-querator-id'} => 1 } @r;
is(scalar keys %ids, 1, 'every attempt carries the same X-Querator-Id');
my $gap1 = $r[1]{time} - $r[0]{time};
my $gap2 = $r[2]{time} - $r[1]{time};
# Backoff 2 s, doubling, jitter 0.8-1.0: the gaps are at least 1.6 s and 3.2 s. The
# lower bounds are the behaviour (the second is beyond the first's most: it doubled);
# the upper bounds only say "not at the 60 s idle round".
note(sprintf('retry gaps: %.3f s, %.3f s (backoff 2 s, doubling, jitter 0.8-1.0)', $gap1, $gap2));
ok($gap1 >= 1.55 && $gap1 < 20, 'first retry after the backoff');
ok($gap2 >= 3.15 && $gap2 < 20, 'second retry after twice the backoff');
# last_status and last_error describe the same, latest attempt: after the success, no
# error is shown next to the 200 (it read as "200 with HTTP 500" before).
is(sql(q{SELECT deliveries, failures, last_status, last_error IS NULL FROM querator.webhook_status()
         WHERE queue_name = 'flaky'}),
	'1|2|200|t', 'webhook_status counts the failures; the success cleared the last error');

# --- max_attempts: dead-lettered with the last error.
$url = sink_url($sink, '/fail');
sql(qq{SELECT querator.queues_create('doomed', webhook_url => '$url', webhook_backoff => '100 ms',
    webhook_backoff_max => '200 ms', max_attempts => 3)});
sql(q{SELECT querator.queue_produce('doomed', 'd1')});
ok(defined poll_until($node, $db, q{SELECT count(*) FROM querator.storage_dead_list('doomed')}, '1', 20),
	'dead-lettered after max_attempts');
is(sql(q{SELECT attempts, reason, last_error FROM querator.storage_dead_list('doomed')}),
	'3|max_attempts|HTTP 500', 'the dead letter keeps the attempts and the last error');
is(scalar(requests_for('/fail')), 3, 'three attempts were made');
is(sql(q{SELECT failures, last_status, last_error FROM querator.webhook_status() WHERE queue_name = 'doomed'}),
	'3|500|HTTP 500', 'webhook_status shows the last error');

# --- a hanging receiver: webhook_timeout ends the transfer.
$url = sink_url($sink, '/hang');
sql(qq{SELECT querator.queues_create('slow', webhook_url => '$url', webhook_timeout => '10 s',
    webhook_backoff => '10 s', max_attempts => 1)});
my $t0 = time;
sql(q{SELECT querator.queue_produce('slow', 's1')});

# Meanwhile another queue is delivered at once: the slow endpoint holds up nothing.
$url = sink_url($sink, '/ok');
sql(qq{SELECT querator.queues_create('fast', webhook_url => '$url')});
sql(q{SELECT querator.queue_produce('fast', array_agg('x' || g)) FROM generate_series(1, 20) g});
ok(queue_drained($node, $db, 'fast', 9), 'another queue is delivered while a transfer hangs');
ok(time - $t0 < 10, 'before the hanging transfer timed out');

ok(defined poll_until($node, $db, q{SELECT count(*) FROM querator.storage_dead_list('slow')}, '1', 40),
	'the hanging transfer times out');
my $took = time - $t0;
note(sprintf('timeout observed after %.2f s (webhook_timeout 10 s)', $took));
ok($took >= 10 && $took < 30, 'after webhook_timeout (and not long after)');
like(sql(q{SELECT last_error FROM querator.storage_dead_list('slow')}), qr/timed out/i,
	'last error names the timeout');
is(sql(q{SELECT last_status IS NULL FROM querator.webhook_status() WHERE queue_name = 'slow'}), 't',
	'no HTTP status for a timeout');

# --- the receiver closes the connection without an answer.
$url = sink_url($sink, '/close');
sql(qq{SELECT querator.queues_create('closer', webhook_url => '$url', max_attempts => 1)});
sql(q{SELECT querator.queue_produce('closer', 'c1')});
ok(defined poll_until($node, $db, q{SELECT count(*) FROM querator.storage_dead_list('closer')}, '1', 10),
	'a closed connection is a failure');
like(sql(q{SELECT last_error FROM querator.storage_dead_list('closer')}), qr/empty reply|reset|closed|died/i,
	'last error is curl\'s');

# --- a non-2xx success-looking status (redirects are not followed).
$url = sink_url($sink, '/status/302');
sql(qq{SELECT querator.queues_create('moved', webhook_url => '$url', max_attempts => 1)});
sql(q{SELECT querator.queue_produce('moved', 'm1')});
ok(defined poll_until($node, $db, q{SELECT last_error FROM querator.storage_dead_list('moved')}, 'HTTP 302', 10),
	'a redirect is not followed and counts as a failure');

stop_sink($sink);
$node->stop;
done_testing();
