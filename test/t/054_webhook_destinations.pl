# Webhook destinations are checked after DNS resolution, at connect time:
# without querator.webhook_allowed_cidrs a loopback sink receives nothing and
# the item ends dead with a clear last_error; a name that resolves to
# loopback, the metadata address and other non-public literals are refused
# the same way; listing a range lets it through; narrowing the list again
# also stops a connection curl keeps alive. last_error is for queue admins
# only. The role querator_webhook_admin comes with install and upgrade and
# stays after DROP EXTENSION.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;
use WebhookSink;

my $node = querator_node('webhook_destinations'); # no sink_conf(): public addresses only
my $db = 'postgres';
sub sql { return $node->safe_psql($db, $_[0]); }

# The upgrade from 0.1.0 creates the role; a second database finds it and keeps it on DROP EXTENSION.
sql(q{CREATE EXTENSION querator VERSION '0.1.0'});
is(sql(q{SELECT count(*) FROM pg_roles WHERE rolname = 'querator_webhook_admin'}), '0', 'no role at 0.1.0');
sql(q{ALTER EXTENSION querator UPDATE});
is(sql(q{SELECT rolcanlogin FROM pg_roles WHERE rolname = 'querator_webhook_admin'}), 'f',
	'ALTER EXTENSION UPDATE creates querator_webhook_admin (NOLOGIN)');
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION querator');
$node->safe_psql('other', 'DROP EXTENSION querator');
is(sql(q{SELECT count(*) FROM pg_roles WHERE rolname = 'querator_webhook_admin'}), '1',
	'CREATE EXTENSION where the role exists works; DROP EXTENSION leaves the role');
$node->safe_psql('postgres', 'DROP DATABASE other');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');

my $sink = start_sink();
my $port = $sink->{port};
my $refused = qr/^destination \S+ is not allowed by querator\.webhook_allowed_cidrs \(loopback address\)$/;

# --- a loopback sink, not allowed: nothing arrives, the item dies with the reason.
sql(qq{SELECT querator.queues_create('loop', webhook_url => 'http://127.0.0.1:$port/ok', max_attempts => 2,
    webhook_backoff => '100 ms', webhook_backoff_max => '100 ms')});
sql(q{SELECT querator.queue_produce('loop', 'l1')});
ok(defined poll_until($node, $db, q{SELECT count(*) FROM querator.storage_dead_list('loop')}, '1', 20),
	'a loopback destination fails until dead-lettered');
is(sql(q{SELECT attempts, reason, last_error FROM querator.storage_dead_list('loop')}),
	'2|max_attempts|destination 127.0.0.1 is not allowed by querator.webhook_allowed_cidrs (loopback address)',
	'retried, then dead with the clear error');
is(sql(q{SELECT failures, last_status IS NULL, last_error FROM querator.webhook_status() WHERE queue_name = 'loop'}),
	'2|t|destination 127.0.0.1 is not allowed by querator.webhook_allowed_cidrs (loopback address)',
	'webhook_status shows the refusal');
is(scalar(sink_requests($sink)), 0, 'the loopback sink received nothing');

# --- a name is checked after resolution: localhost is loopback whatever the url says.
sql(qq{SELECT querator.queues_create('named', webhook_url => 'http://localhost:$port/ok', max_attempts => 1)});
sql(q{SELECT querator.queue_produce('named', 'n1')});
ok(defined poll_until($node, $db, q{SELECT count(*) FROM querator.storage_dead_list('named')}, '1', 20),
	'a host name resolving to loopback is refused');
like(sql(q{SELECT last_error FROM querator.storage_dead_list('named')}), $refused, 'with the resolved address');
is(scalar(sink_requests($sink)), 0, 'still nothing received');

# --- literal addresses of every kind the issue lists: refused before any connection.
my %literals = (
	'169.254.169.254' => 'link-local',
	'10.0.0.1' => 'private',
	'192.168.0.1' => 'private',
	'100.100.100.200' => 'shared (CGNAT)',
	'0.0.0.0' => 'unspecified',
	'[::1]' => 'loopback',
	'[::ffff:169.254.169.254]' => 'link-local',
	'[fd00:ec2::254]' => 'private',
);
my $n = 0;
for my $host (sort keys %literals)
{
	$n++;
	sql(qq{SELECT querator.queues_create('lit$n', webhook_url => 'http://$host:$port/latest/meta-data',
	    max_attempts => 1)});
	sql(qq{SELECT querator.queue_produce('lit$n', 'x')});
	ok(defined poll_until($node, $db, qq{SELECT count(*) FROM querator.storage_dead_list('lit$n')}, '1', 20),
		"$host is refused");
	like(sql(qq{SELECT last_error FROM querator.storage_dead_list('lit$n')}),
		qr/^destination \S+ is not allowed by querator\.webhook_allowed_cidrs \(\Q$literals{$host}\E address\)$/,
		"$host: the error names the $literals{$host} address");
}

# --- last_error is for queue admins: a consumer sees NULL, an admin the text.
sql(q{CREATE ROLE hook_consumer; CREATE ROLE hook_admin});
sql(q{SELECT querator.queue_grant('loop', 'hook_consumer', 'consume'),
             querator.queue_grant('loop', 'hook_admin', 'admin')});
my $as_consumer = q{SET ROLE hook_consumer;
    SELECT (SELECT last_error IS NULL FROM querator.storage_dead_list('loop')),
           (SELECT last_error IS NULL AND failures = 2 FROM querator.webhook_status() WHERE queue_name = 'loop')};
is(sql($as_consumer), 't|t', 'a consumer sees no last_error (storage_dead_list, webhook_status)');
is(sql(q{SET ROLE hook_admin;
    SELECT (SELECT last_error IS NOT NULL FROM querator.storage_dead_list('loop')),
           (SELECT last_error IS NOT NULL FROM querator.webhook_status() WHERE queue_name = 'loop')}),
	't|t', 'an admin of the queue sees it');
sql(q{CREATE ROLE hook_stranger});
is(sql(q{SET ROLE hook_stranger; SELECT count(*) FROM querator.webhook_status() WHERE queue_name = 'loop'}), '0',
	'a role that holds nothing on the queue does not see it in webhook_status');

# --- allowing 127.0.0.1/32 lets the sink through (after a reload, no restart).
sql(q{ALTER SYSTEM SET querator.webhook_allowed_cidrs = '127.0.0.1/32'});
sql(q{SELECT pg_reload_conf()});
sleep 1;
sql(q{SELECT querator.queue_redrive('loop')});
ok(queue_drained($node, $db, 'loop', 20), 'with loopback allowed the redriven item is delivered');
is(join(',', map { $_->{body} } sink_requests($sink)), 'l1', 'the sink received it');

# --- narrowed again: a kept-alive connection to the sink is not used any more either.
sql(q{SELECT querator.queue_produce('loop', 'l2')});
ok(queue_drained($node, $db, 'loop', 20), 'another delivery (its connection stays open)');
sql(q{ALTER SYSTEM RESET querator.webhook_allowed_cidrs});
sql(q{SELECT pg_reload_conf()});
sleep 1;
sql(q{SELECT querator.queue_produce('loop', 'l3')});
ok(defined poll_until($node, $db, q{SELECT count(*) FROM querator.storage_dead_list('loop')}, '1', 20),
	'after the reset the next item is refused again');
is(sql(q{SELECT convert_from(payload, 'UTF8') || ' ' || last_error FROM querator.storage_dead_list('loop')}),
	'l3 destination 127.0.0.1 is not allowed by querator.webhook_allowed_cidrs (loopback address)',
	'refused on the reused connection too');
is(join(',', map { $_->{body} } sink_requests($sink)), 'l1,l2', 'nothing more arrived');

stop_sink($sink);
$node->stop;
done_testing();
