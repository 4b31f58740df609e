# ALTER EXTENSION querator UPDATE from 0.1.0 fixes, or refuses to use, the queue
# definitions 0.1.0 accepted and 0.2.0 refuses, and says so with a WARNING each:
# a dead_queue whose feeder's owner holds no produce on it is detached; durations
# with a negative part are justified (and webhook_timeout lowered to its limit);
# a webhook_url with a user name and password is kept but never sent to.
# queues_update validates what a call changes, not what is stored.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;
use WebhookSink;

my $node = querator_node('upgrade_old_states', sink_conf());
my $db = 'postgres';
sub sql { return $node->safe_psql($db, $_[0]); }
my $sink = start_sink();

$node->safe_psql($db, q{
	CREATE ROLE alice; CREATE ROLE bob; CREATE ROLE carol; CREATE ROLE dave; CREATE ROLE admins;
	GRANT alice TO dave; GRANT admins TO carol;
});
sql("CREATE EXTENSION querator VERSION '0.1.0'");
# Definitions as 0.1.0 stored them: created through the API (with the tables
# of the 0.1.0 library), then the row written as 0.1.0 let its callers write
# it (the library now refuses these).
my $hook_url = sink_url($sink, '/hook');
(my $userinfo_url = $hook_url) =~ s{^http://}{http://user:secret\@};
with_0_1_0_queue_tables($node, $db, qq{
	SELECT querator.queues_create('theirs');
	SELECT querator.queues_create(name, dead_queue => 'theirs')
	  FROM unnest(ARRAY['from_bob', 'from_carol', 'from_dave', 'from_ghost', 'from_super']) name;
	UPDATE querator.queues SET owner = 'alice' WHERE name = 'theirs';
	UPDATE querator.queues SET owner = 'bob' WHERE name = 'from_bob';     -- holds nothing on theirs
	UPDATE querator.queues SET owner = 'carol' WHERE name = 'from_carol'; -- through admins, granted produce
	UPDATE querator.queues SET owner = 'dave' WHERE name = 'from_dave';   -- a member of alice, the owner
	UPDATE querator.queues SET owner = 'gone' WHERE name = 'from_ghost';  -- a role dropped since
	SELECT querator.queue_grant('theirs', 'admins', 'produce');
	INSERT INTO querator.queue_grants VALUES ('theirs', 'also_gone', 'produce');

	SELECT querator.queues_create('durations', webhook_url => '$hook_url');
	UPDATE querator.queues SET lease_timeout = '1 day -23:00:00', expire_timeout = '1 mon -29 days',
	       webhook_timeout = '2 hours', webhook_backoff = '1 day -23:59:00' WHERE name = 'durations';
	SELECT querator.queue_pause('durations');
	SELECT querator.queues_create('fine', lease_timeout => '18 hours', expire_timeout => '45 days');

	SELECT querator.queues_create('hook', webhook_url => '$hook_url', max_attempts => 1);
	UPDATE querator.queues SET webhook_url = '$userinfo_url' WHERE name = 'hook';
});

# One session: it caches from_bob's definition before the update, and must see the new one after it.
my ($ret, $stdout, $stderr) = $node->psql($db, q{
	SELECT querator.queue_produce('from_bob', 'b1'::text) > 0;
	ALTER EXTENSION querator UPDATE;
	SELECT querator.queue_retry('from_bob', ARRAY(SELECT id FROM querator.queue_lease('from_bob', 'c')), dead => true);
}, on_error_stop => 1);
is($ret, 0, 'ALTER EXTENSION querator UPDATE succeeds') or diag($stderr);
my @warnings = $stderr =~ /WARNING:  (.*)$/mg;
note(join("\n", @warnings));

# dead queues
is_deeply([ grep { /dead_queue/ } @warnings ], [
	"querator: dead_queue of queue 'from_bob' removed: its owner 'bob' holds no produce privilege on 'theirs', which 0.2.0 requires; it keeps its dead letters in its own dead-letter table",
	"querator: dead_queue of queue 'from_ghost' removed: its owner 'gone' holds no produce privilege on 'theirs', which 0.2.0 requires; it keeps its dead letters in its own dead-letter table",
], 'a WARNING for each feeder whose owner holds no produce on its dead queue (or no longer exists)');
is(sql(q{SELECT string_agg(name || '=' || coalesce(dead_queue, '-'), ' ' ORDER BY name) FROM querator.queues
	WHERE name LIKE 'from\_%'}), 'from_bob=- from_carol=theirs from_dave=theirs from_ghost=- from_super=theirs',
	'those are detached; a grantee (through a role), a member of the owner and a superuser keep theirs');
is(sql(q{SELECT (SELECT count(*) FROM querator.storage_dead_list('from_bob')) || ' '
	|| (SELECT count(*) FROM querator.storage_items_list('theirs'))}), '1 0',
	'a detached feeder keeps its dead letters, even in a session that cached it before the update');

# durations
is_deeply([ grep { /durations/ } @warnings ], [
	"querator: durations of queue 'durations' changed to fit the limits of 0.2.0: expire_timeout 1 day, lease_timeout 01:00:00, webhook_backoff 00:01:00, webhook_timeout 01:00:00",
], 'a WARNING names the queue with negative parts and a long webhook timeout, and the new values');
is(sql(q{SELECT concat_ws(' ', lease_timeout, expire_timeout, webhook_timeout, webhook_backoff, webhook_backoff_max)
	FROM querator.queues WHERE name = 'durations'}), '01:00:00 1 day 01:00:00 00:01:00 00:05:00',
	'justified and within the limits; the rest unchanged');
is(sql(q{SELECT lease_timeout || ' ' || expire_timeout FROM querator.queues WHERE name = 'fine'}), '18:00:00 45 days',
	'a valid queue keeps its values as written');
sql(q{SELECT querator.queues_update('durations', reference => 'x')});
is(sql(q{SELECT reference FROM querator.queues WHERE name = 'durations'}), 'x', 'and the queue updates again');

# webhook url with userinfo
is_deeply([ grep { /webhook_url/ } @warnings ], [
	"querator: webhook_url of queue 'hook' has a user name or password, which 0.2.0 refuses: nothing is delivered to it until queues_update sets a url without them (credentials go in webhook_headers)",
], 'a WARNING names the queue whose webhook_url has a user name and password');
is(sql(q{SELECT webhook_url FROM querator.queues WHERE name = 'hook'}), $userinfo_url, 'the url is not rewritten');
is(scalar @warnings, 4, 'no other WARNING');

sql(q{SELECT querator.queue_produce('hook', 'h1'::text)});
ok(defined poll_until($node, $db, q{SELECT count(*) FROM querator.storage_dead_list('hook')}, '1', 20),
	'delivery fails the item (max_attempts 1: dead-lettered)');
my $refusal = 'webhook url is invalid; cannot contain a user name or password (user:password@); send credentials in webhook_headers';
is(sql(q{SELECT last_error FROM querator.storage_dead_list('hook')}), $refusal, 'with the url refusal as its last error');
# (its counters are published right after the commit that dead-letters the item)
ok(defined poll_until($node, $db, q{SELECT coalesce(last_status::text, 'no status') || ': ' || last_error
	FROM querator.webhook_status() WHERE queue_name = 'hook'}, "no status: $refusal", 10), 'webhook_status shows it');
is(scalar(sink_requests($sink)), 0, 'and nothing was sent: no request, no credentials');

# queues_update validates what the call changes, and what depends on it.
sql(q{SELECT querator.queues_update('hook', reference => 'kept')});
is(sql(q{SELECT reference FROM querator.queues WHERE name = 'hook'}), 'kept',
	'an update that does not touch the stored url succeeds');
($ret, $stdout, $stderr) = $node->psql($db,
	"\\set VERBOSITY verbose\nSELECT querator.queues_update('hook', webhook_url => '$userinfo_url/other')");
like($stderr, qr/ERROR:  22023: webhook url is invalid; cannot contain a user name or password/, 'a new url with userinfo is refused');
sql(q{UPDATE querator.queues SET lease_timeout = '1 day -23:00:00' WHERE name = 'fine'});
sql(q{SELECT querator.queues_update('fine', max_attempts => 3)});
is(sql(q{SELECT max_attempts FROM querator.queues WHERE name = 'fine'}), '3',
	'a stored duration with a negative part does not fail an update of another field');
($ret, $stdout, $stderr) = $node->psql($db,
	"\\set VERBOSITY verbose\nSELECT querator.queues_update('fine', expire_timeout => '30 minutes')");
like($stderr, qr/ERROR:  22023: lease timeout is too long; 1 day -23:00:00 cannot be greater than the expire timeout 00:30:00/,
	'a changed expire timeout is still checked against the lease timeout');
($ret, $stdout, $stderr) = $node->psql($db,
	"\\set VERBOSITY verbose\nSELECT querator.queues_update('fine', lease_timeout => '1 day -22:00:00')");
like($stderr, qr/ERROR:  22023: lease timeout is invalid; cannot have a negative part/, 'a changed lease timeout is checked');

stop_sink($sink);
$node->stop;
done_testing();
