# The HTTP/JSON API (issue 15) through real HTTP clients: curl for every
# endpoint and every error status, Querator's quick-start command verbatim,
# long polls woken by a produce over SQL and over HTTP, API keys and grants,
# body limits, malformed JSON; then Python's standard library (http.client,
# keep-alive) under load while the HTTP server process is killed with
# SIGKILL (nothing acknowledged is lost, it comes back, PostgreSQL does not
# restart), and a shutdown that answers a waiting lease with 453.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(usleep time);
use QueratorTap;

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = querator_node('http',
	"querator.http_listen_addresses = '127.0.0.1'\n"
	  . "querator.http_port = $port\n"
	  . "querator.http_database = 'postgres'\n"
	  . "querator.http_max_requests = 8\n");
my $db = 'postgres';
my $url = "http://127.0.0.1:$port";
my $json = JSON::PP->new->canonical;

sub sql { return $node->safe_psql($db, $_[0]); }

# POST (or another method) through curl: (status, decoded reply or raw text).
sub http
{
	my ($path, $body, %opt) = @_;
	my @cmd = ('curl', '-s', '-S', '-o', '-', '-w', "\n%{http_code}", '-X', $opt{method} // 'POST', "$url$path");
	push @cmd, '-H', "Authorization: Bearer $opt{key}" if defined $opt{key};
	push @cmd, '-H', 'Content-Type: application/json';
	push @cmd, @{ $opt{curl} } if $opt{curl};
	push @cmd, '--data-binary', (ref $body ? $json->encode($body) : $body) if defined $body;
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	my ($text, $status) = $out =~ /\A(.*)\n(\d+)\z/s or die "curl: $err";
	my $reply = eval { $json->decode($text) } // $text;
	return ($status, $reply);
}

# A request started in the background (a long poll): finish_http() returns (status, reply, seconds).
sub start_http
{
	my ($path, $body, $key) = @_;
	my $out = '';
	my $h = IPC::Run::start(['curl', '-s', '-o', '-', '-w', "\n%{http_code}", '-X', 'POST', "$url$path",
		'-H', "Authorization: Bearer $key", '--data-binary', $json->encode($body)],
		'>', \$out, IPC::Run::timeout(60));
	return { h => $h, out => \$out, started => time };
}

sub finish_http
{
	my ($call) = @_;
	$call->{h}->finish;
	my ($text, $status) = ${ $call->{out} } =~ /\A(.*)\n(\d+)\z/s;
	return ($status, eval { $json->decode($text) } // $text, time - $call->{started});
}

# Waits until the API answers /health (after a start or a restart of its process).
sub wait_for_api
{
	for (1 .. 100)
	{
		my ($out, $err) = ('', '');
		IPC::Run::run(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', "$url/health"], '>', \$out, '2>', \$err);
		return 1 if $out eq '200';
		usleep(100_000);
	}
	return 0;
}

sub server_pid
{
	my $supervisor = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'querator http'");
	my ($out, $err) = ('', '');
	IPC::Run::run(['pgrep', '-P', $supervisor, '-x', 'querator-http'], '>', \$out, '2>', \$err);
	chomp $out;
	return $out;
}

# Changes a setting by ALTER SYSTEM and reload: true once a new server process answers.
sub reload_with
{
	my ($alter) = @_;
	my $old = server_pid();
	sql($alter);
	sql('SELECT pg_reload_conf()');
	for (1 .. 100)
	{
		my $pid = server_pid();
		return wait_for_api() if $pid && $pid ne $old;
		usleep(100_000);
	}
	return 0;
}

sql(<<'SQL');
CREATE EXTENSION querator;
CREATE ROLE app;
CREATE ROLE reader;
CREATE ROLE outsider;
CREATE ROLE anon;
SELECT querator.queues_create('jobs');
SELECT querator.queue_grant('jobs', 'app', p) FROM unnest(ARRAY['produce', 'consume']) p;
SELECT querator.queue_grant('jobs', 'reader', 'consume');
SELECT querator.queues_create('email-queue');
SELECT querator.queue_grant('email-queue', 'anon', 'produce');
SQL
my $admin = sql("SELECT querator.api_key_create('postgres', 'test superuser')");
my $app = sql("SELECT querator.api_key_create('app')");
my $reader = sql("SELECT querator.api_key_create('reader')");
my $outsider = sql("SELECT querator.api_key_create('outsider')");
like($app, qr/\Aqtr-[0-9a-f]{8}-[0-9a-f]{64}\z/, 'api_key_create returns a qtr-<tag>-<secret> key');
is(sql("SELECT count(*) FROM querator.api_keys WHERE key_hash = sha256(convert_to('$app', 'UTF8'))"), '1',
	'stored as its SHA-256 only');
is(sql("SELECT count(*) FROM querator.api_keys WHERE encode(key_hash, 'escape') LIKE '%qtr-%'"), '0', 'never in clear');
ok(wait_for_api(), 'the API answers /health');

# ------------------------------------------------------------ transport and authentication
my ($status, $reply) = http('/health', undef, method => 'GET');
is($status, 200, 'GET /health needs no key');
($status, $reply) = http('/v1/queue.produce', undef, method => 'GET');
is_deeply([ $status, $reply->{message} ], [ 400, "http method 'GET' not allowed; only POST" ], 'GET: 400');
($status, $reply) = http('/v1/queue.nothing', {}, key => $admin);
is_deeply([ $status, $reply->{message} ], [ 501, 'no such method; /v1/queue.nothing' ], 'unknown path: 501');
($status, $reply) = http('/v1/queues.list', {});
is($status, 401, 'no key: 401');
is_deeply($reply, { code => 401, code_text => 'Unauthorized',
	message => 'unauthenticated; no api key (Authorization: Bearer <key>)' }, "Querator's error shape");
($status, $reply) = http('/v1/queues.list', {}, key => 'qtr-00000000-wrong');
is_deeply([ $status, $reply->{message} ], [ 401, 'unauthenticated; invalid or revoked api key' ], 'unknown key: 401');
# A refused key skips the rest of the request's pipeline, its statement's first prepare included.
($status, $reply) = http('/v1/queues.list', {}, key => $admin);
is($status, 200, 'then the same call with a valid key, on the same pooled connection');
my $produce = { queue_name => 'jobs', items => [ { utf8 => 'x' } ] };
($status, $reply) = http('/v1/queue.produce', $produce, key => $reader);
is_deeply([ $status, $reply->{message} ], [ 403, "permission denied for queue; role 'reader' lacks the produce privilege on 'jobs'" ],
	'a role without the right: 403');
($status, $reply) = http('/v1/queue.produce', $produce, key => $outsider);
is_deeply([ $status, $reply->{message} ], [ 400, "queue does not exist; no such queue named 'jobs'" ],
	'a role with no right at all does not learn that the queue exists');
is(sql("SELECT count(*) FROM querator.storage_items_list('jobs')"), '0', 'nothing produced by refused calls');
my $tag = sql("SELECT tag FROM querator.api_keys WHERE role_name = 'outsider'");
is(sql("SELECT querator.api_key_revoke('$tag')"), 't', 'api_key_revoke');
($status, $reply) = http('/v1/queues.list', {}, key => $outsider);
is($status, 401, 'a revoked key: 401 at once');
is(sql("SELECT string_agg(role_name || ':' || (revoked_at IS NOT NULL), ',' ORDER BY role_name) FROM querator.api_keys_list()"),
	'app:false,outsider:true,postgres:false,reader:false', 'api_keys_list');
$node->psql($db, 'SET ROLE app; SELECT querator.api_key_create(\'app\')', stderr => \my $stderr);
like($stderr, qr/permission denied for function api_key_create/, 'only superusers create keys');

# ------------------------------------------------------------ Querator's quick start, verbatim
ok(reload_with("ALTER SYSTEM SET querator.http_anonymous_role = 'anon'"), 'the server restarts with the new setting (SIGHUP)');
my $quickstart = <<'CMD';
curl -X POST localhost:PORT/v1/queue.produce \
-H "Content-Type: application/json" \
-d '{
"queue_name": "email-queue",
"items": [{
"kind": "welcome-email",
"reference": "user-123",
"utf8": "{\"email\": \"user@example.com\"}"
}]
}'
CMD
$quickstart =~ s/localhost:PORT/localhost:$port/;
my $out = '';
IPC::Run::run([ 'sh', '-c', $quickstart ], '>', \$out, '2>', \my $err);
is($out, '{"code":200}', "Querator's quick-start curl command, verbatim (anonymous role)");
is(sql("SELECT kind || ' ' || reference || ' ' || convert_from(payload, 'UTF8') FROM querator.storage_items_list('email-queue')"),
	'welcome-email user-123 {"email": "user@example.com"}', 'the item as produced');
($status, $reply) = http('/v1/queue.lease', { queue_name => 'email-queue', batch_size => 1, client_id => 'c' });
is($status, 403, 'the anonymous role has only its grants');
ok(reload_with("ALTER SYSTEM RESET querator.http_anonymous_role"), 'and back without it');

# ------------------------------------------------------------ every endpoint
($status, $reply) = http('/v1/queues.create', { queue_name => 'q1', lease_timeout => '90s', expire_timeout => '24h',
	max_attempts => 3, requested_partitions => 2, reference => 'ref' }, key => $admin);
is_deeply([ $status, $reply ], [ 200, { code => 200 } ], 'queues.create');
($status, $reply) = http('/v1/queues.info', { queue_name => 'q1' }, key => $admin);
is_deeply([ $status, @{$reply}{qw(queue_name lease_timeout expire_timeout max_attempts partitions reference)} ],
	[ 200, 'q1', '1m30s', '24h0m0s', 3, 2, 'ref' ], 'queues.info: durations as Go strings');
like($reply->{created_at}, qr/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\z/, 'timestamps in RFC 3339');
($status, $reply) = http('/v1/queues.update', { queue_name => 'q1', lease_timeout => '5m', max_attempts => 0 }, key => $admin);
is($status, 200, 'queues.update');
($status, $reply) = http('/v1/queues.info', { queue_name => 'q1' }, key => $admin);
is_deeply([ @{$reply}{qw(lease_timeout max_attempts expire_timeout)} ], [ '5m0s', 0, '24h0m0s' ],
	'queues.update changed what was given, kept the rest');
($status, $reply) = http('/v1/queues.list', { pivot => 'email-queue', limit => 2 }, key => $admin);
is_deeply([ $status, map { $_->{queue_name} } @{ $reply->{items} } ], [ 200, 'email-queue', 'jobs' ], 'queues.list: pivot, limit');

($status, $reply) = http('/v1/queue.produce', { queue_name => 'q1', request_timeout => '5s', items => [
	{ kind => 'k1', reference => 'r1', bytes => 'AAEC/w==', encoding => 'application/x-test' },
	{ utf8 => 'second', encoding => 'application/x-test' } ] }, key => $admin);
is_deeply([ $status, $reply ], [ 200, { code => 200 } ], 'queue.produce: bytes and utf8');
($status, $reply) = http('/v1/queue.produce', { queue_name => 'q1',
	items => [ { utf8 => 'later', enqueue_at => '2099-01-01T00:00:00Z' } ] }, key => $admin);
like($reply->{message}, qr/^enqueue at is invalid; /, 'queue.produce: querator refuses an enqueue_at past the expire deadline (400)');
($status, $reply) = http('/v1/queue.produce', { queue_name => 'q1',
	items => [ { utf8 => 'later', enqueue_at => '2035-01-01T00:00:00Z' } ] }, key => $admin);
($status, $reply) = http('/v1/queues.update', { queue_name => 'q1', expire_timeout => '0s' }, key => $admin);
($status, $reply) = http('/v1/queue.produce', { queue_name => 'q1',
	items => [ { utf8 => 'later', enqueue_at => '2035-01-01T00:00:00Z' } ] }, key => $admin);
is($status, 200, 'queue.produce: a scheduled item');
($status, $reply) = http('/v1/storage/scheduled.list', { queue_name => 'q1' }, key => $admin);
is_deeply([ $status, scalar @{ $reply->{items} }, $reply->{items}[0]{enqueue_at} ], [ 200, 1, '2035-01-01T00:00:00Z' ],
	'storage/scheduled.list');
($status, $reply) = http('/v1/storage/items.list', { queue_name => 'q1' }, key => $admin);
is_deeply([ $status, map { [ $_->{kind}, $_->{payload}, $_->{encoding}, $_->{is_leased} ? 1 : 0 ] } @{ $reply->{items} } ],
	[ 200, [ 'k1', 'AAEC/w==', 'application/x-test', 0 ], [ '', 'c2Vjb25k', 'application/x-test', 0 ] ], 'storage/items.list');

($status, $reply) = http('/v1/queue.lease', { queue_name => 'q1', batch_size => 10, client_id => 'w1', request_timeout => '5s' },
	key => $admin);
is($status, 200, 'queue.lease');
is_deeply([ $reply->{queue_name}, map { [ $_->{kind}, $_->{reference}, $_->{bytes}, $_->{attempts} ] } @{ $reply->{items} } ],
	[ 'q1', [ 'k1', 'r1', 'AAEC/w==', 1 ], [ '', '', 'c2Vjb25k', 1 ] ], 'the items, payloads as base64');
like($reply->{items}[0]{id}, qr/\A\d+\z/, 'ids as decimal strings');
like($reply->{items}[0]{lease_deadline}, qr/Z\z/, 'lease_deadline in RFC 3339');
my @ids = map { $_->{id} } @{ $reply->{items} };
($status, $reply) = http('/v1/queue.stats', { queue_name => 'q1' }, key => $admin);
my ($p0, $p1) = sort { $a->{partition} <=> $b->{partition} } @{ $reply->{logical_queues}[0]{partitions} };
my $leased = (grep { $_->{total_leased} == 2 } $p0, $p1)[0];
is_deeply([ $status, $leased->{total}, $leased->{total_leased} ], [ 200, 2, 2 ],
	"queue.stats: Querator's total counts leased items too");
($status, $reply) = http('/v1/queue.retry', { queue_name => 'q1', items => [ { id => $ids[1] } ] }, key => $admin);
is_deeply([ $status, $reply ], [ 200, { code => 200 } ], 'queue.retry');
($status, $reply) = http('/v1/queue.complete', { queue_name => 'q1', ids => [ $ids[0] ] }, key => $admin);
is_deeply([ $status, $reply ], [ 200, { code => 200 } ], 'queue.complete');
($status, $reply) = http('/v1/queue.complete', { queue_name => 'q1', ids => [ $ids[0] ] }, key => $admin);
is_deeply([ $status, $reply->{message} ], [ 400, "invalid storage id; '$ids[0]' does not exist" ], 'complete twice: 400');
($status, $reply) = http('/v1/storage/items.list', { queue_name => 'q1' }, key => $admin);
my $retried = $reply->{items}[0]{id};
($status, $reply) = http('/v1/queue.complete', { queue_name => 'q1', ids => [$retried] }, key => $admin);
is_deeply([ $status, $reply->{message} ], [ 400, "item(s) cannot be completed; '$retried' is not marked as leased" ],
	'complete of an item not leased: 400');
($status, $reply) = http('/v1/queue.clear', { queue_name => 'q1' }, key => $admin);
is_deeply([ $status, $reply->{message} ], [ 400, "invalid clear request; one of 'queue' or 'scheduled' must be true" ],
	'queue.clear needs queue or scheduled');
($status, $reply) = http('/v1/queue.clear', { queue_name => 'q1', queue => JSON::PP::true, scheduled => JSON::PP::true },
	key => $admin);
is($status, 200, 'queue.clear');
is(sql("SELECT count(*) FROM querator.storage_items_list('q1')") + sql("SELECT count(*) FROM querator.storage_scheduled_list('q1')"),
	0, 'cleared');
($status, $reply) = http('/v1/queues.delete', { queue_name => 'q1' }, key => $admin);
is_deeply([ $status, $reply ], [ 200, { code => 200 } ], 'queues.delete');
($status, $reply) = http('/v1/queues.info', { queue_name => 'q1' }, key => $admin);
is_deeply([ $status, $reply->{message} ], [ 400, "queue does not exist; no such queue named 'q1'" ], 'gone');

($status, $reply) = http('/v1/storage/items.import', { queue_name => 'jobs', items => [
	{ payload => 'aW1wb3J0ZWQ=', kind => 'i1', encoding => 'text/plain' }, { payload => 'AAE=', kind => 'i2' } ] }, key => $app);
is_deeply([ $status, map { [ $_->{kind}, $_->{encoding} ] } @{ $reply->{items} } ],
	[ 200, [ 'i1', 'text/plain' ], [ 'i2', 'application/octet-stream' ] ], 'storage/items.import');
like(join(',', map { $_->{id} } @{ $reply->{items} }), qr/\A\d+,\d+\z/, '... with the new ids, in order');
is(sql("SELECT string_agg(kind || ':' || encode(payload, 'base64'), ',' ORDER BY id) FROM querator.storage_items_list('jobs')"),
	'i1:aW1wb3J0ZWQ=,i2:AAE=', '... stored as items');
my @imported = map { $_->{id} } @{ $reply->{items} };
($status, $reply) = http('/v1/storage/items.delete', { queue_name => 'jobs', ids => [ $imported[0], '999999' ] }, key => $admin);
is_deeply([ $status, $reply->{message} ], [ 400, "invalid storage id; '999999' does not exist" ],
	'storage/items.delete: all or none');
($status, $reply) = http('/v1/storage/items.delete', { queue_name => 'jobs', ids => [ $imported[0] ] }, key => $app);
is($status, 403, '... needs admin');
($status, $reply) = http('/v1/storage/items.delete', { queue_name => 'jobs', ids => [ $imported[0] ] }, key => $admin);
is_deeply([ $status, $reply ], [ 200, { code => 200 } ], 'storage/items.delete');
is(sql("SELECT string_agg(kind, ',') FROM querator.storage_items_list('jobs')"), 'i2', '... deleted that item only');
sql("SELECT querator.queue_clear('jobs')");

# Prometheus metrics: with a key (the queues its role may see), without one only when querator.http_metrics_role allows it.
($status, $reply) = http('/metrics', undef, method => 'GET');
is($status, 401, 'GET /metrics without a key: 401 by default');
($status, $reply) = http('/metrics', undef, method => 'GET', key => $app);
is($status, 200, 'GET /metrics with a key');
like($reply, qr/^# TYPE querator_queue_ready gauge\n/m, '... Prometheus text');
like($reply, qr/^querator_queue_produced_total\{queue="jobs",partition="0"\} \d+$/m, '... counters per queue and partition');
unlike($reply, qr/queue="email-queue"/, '... only the queues the key\'s role may see');
ok(reload_with("ALTER SYSTEM SET querator.http_metrics_role = 'reader'"), 'querator.http_metrics_role set');
($status, $reply) = http('/metrics', undef, method => 'GET');
is($status, 200, 'GET /metrics without a key as the metrics role');
like($reply, qr/^querator_queue_leased\{queue="jobs",partition="0"\} 0$/m, '... its queues');
($status, $reply) = http('/v1/queues.list', {});
is($status, 401, 'the metrics role is not an anonymous role for the API');
ok(reload_with("ALTER SYSTEM RESET querator.http_metrics_role"), 'and reset');

# ------------------------------------------------------------ bad input
($status, $reply) = http('/v1/queue.produce', '{"queue_name": "jobs", "items": [', key => $app);
is($status, 400, 'malformed JSON: 400');
like($reply->{message}, qr/^invalid request body; .*parse error/, '... with the parser\'s reason');
($status, $reply) = http('/v1/queue.produce', '[1]', key => $app);
is_deeply([ $status, $reply->{message} ], [ 400, 'invalid request body; expected a JSON object' ], 'not an object: 400');
($status, $reply) = http('/v1/queue.produce', { queue_name => 'jobs', items => [] }, key => $app);
is_deeply([ $status, $reply->{message} ], [ 400, 'items cannot be empty; at least one item is required' ], 'no items');
($status, $reply) = http('/v1/queue.produce', { queue_name => 'jobs', items => [ map { { utf8 => 'x' } } 1 .. 1001 ] }, key => $app);
is_deeply([ $status, $reply->{message} ], [ 400, 'items is invalid; max_batch_size is 1000 but received 1001' ], 'batch over 1000');
($status, $reply) = http('/v1/queue.lease', { queue_name => 'jobs', batch_size => 0, client_id => 'c' }, key => $app);
is_deeply([ $status, $reply->{message} ], [ 400, 'invalid batch size; must be greater than zero' ], 'batch_size 0');
($status, $reply) = http('/v1/queue.lease', { queue_name => 'jobs', batch_size => 1, client_id => '' }, key => $app);
is_deeply([ $status, $reply->{message} ], [ 400, 'invalid client id; cannot be empty' ], 'empty client_id');
($status, $reply) = http('/v1/queue.lease', { queue_name => 'jobs', batch_size => 1, client_id => 'c', request_timeout => '16m' },
	key => $app);
is_deeply([ $status, $reply->{message} ], [ 400, "request timeout is invalid; maximum timeout is '15m' but '16m0s' was requested" ],
	'request_timeout over 15m');
($status, $reply) = http('/v1/queue.produce', { queue_name => 'jobs', request_timeout => '15m', items => [ { utf8 => 'x' } ] },
	key => $app);
like($reply->{message}, qr/^request timeout is invalid; maximum timeout is '15m' but '15m0s'/, 'produce: less than 15m');
($status, $reply) = http('/v1/queue.complete', { queue_name => 'jobs', request_timeout => '1ms', ids => ['1'] }, key => $app);
is_deeply([ $status, $reply->{message} ], [ 400, "request timeout is invalid; minimum timeout is '10ms' but '1ms' was requested" ],
	'request_timeout under 10ms');
($status, $reply) = http('/v1/queue.complete', { queue_name => 'jobs', ids => [] }, key => $app);
is_deeply([ $status, $reply->{message} ], [ 400, 'ids is invalid; list of ids cannot be empty' ], 'no ids');
($status, $reply) = http('/v1/queue.produce', { queue_name => 'nosuch', items => [ { utf8 => 'x' } ] }, key => $app);
is_deeply([ $status, $reply->{message} ], [ 400, "queue does not exist; no such queue named 'nosuch'" ], 'unknown queue');
($status, $reply) = http('/v1/queue.produce', { queue_name => "a'; DROP TABLE querator.queues; --", items => [ { utf8 => 'x' } ] },
	key => $admin);
is($status, 400, 'a name made of SQL is a name');
is(sql("SELECT count(*) FROM querator.queues"), '2', 'and did nothing');

# Body limits, checked before parsing: the declared length, and a chunked body as it comes.
my $big_lease = '{"queue_name": "jobs", "client_id": "' . ('x' x 600) . '"}';
($status, $reply) = http('/v1/queue.lease', $big_lease, key => $app);
is_deeply([ $status, $reply->{message} ],
	[ 400, 'request body is too large; /v1/queue.lease takes at most 512 bytes but received ' . length($big_lease) ],
	'a lease body over 512 bytes');
($status, $reply) = http('/v1/queue.lease', $big_lease, key => $app, curl => [ '-H', 'Transfer-Encoding: chunked' ]);
is_deeply([ $status, $reply->{message} ], [ 400, 'request body is too large; /v1/queue.lease takes at most 512 bytes' ],
	'... and chunked');
my $big_file = "${PostgreSQL::Test::Utils::tmp_check}/big.json";
open(my $fh, '>', $big_file) or die;
print $fh '{"queue_name": "jobs", "items": [{"utf8": "' . ('y' x (5 * 1024 * 1024)) . '"}]}';
close $fh;
($status, $reply) = http('/v1/queue.produce', undef, key => $app, curl => [ '--data-binary', "\@$big_file" ]);
is($status, 400, 'a produce body over 5 MB');
like($reply->{message}, qr/^request body is too large; \/v1\/queue.produce takes at most 5242880 bytes/, '... says the limit');
is(sql("SELECT count(*) FROM querator.storage_items_list('jobs')"), '0', 'nothing produced by refused calls');

# ------------------------------------------------------------ long polls
my $wait = start_http('/v1/queue.lease', { queue_name => 'jobs', batch_size => 5, client_id => 'poller', request_timeout => '30s' }, $app);
usleep(500_000);
($status, $reply) = http('/v1/queue.lease', { queue_name => 'jobs', batch_size => 1, client_id => 'poller', request_timeout => '1s' },
	key => $app);
is_deeply([ $status, $reply->{message} ],
	[ 400, 'duplicate client id; a client cannot make multiple leased requests to the same queue' ], 'duplicate client_id while waiting');
sql("SELECT querator.queue_produce_text('jobs', 'from sql')");
my ($s, $r, $took) = finish_http($wait);
is_deeply([ $s, map { $_->{bytes} } @{ $r->{items} } ], [ 200, 'ZnJvbSBzcWw=' ], 'a long poll woken by a produce over SQL');
ok($took < 10, "... at once (${took}s of a 30s wait)");
$wait = start_http('/v1/queue.lease', { queue_name => 'jobs', batch_size => 5, client_id => 'poller', request_timeout => '30s' }, $app);
usleep(500_000);
($status) = http('/v1/queue.produce', { queue_name => 'jobs', items => [ { utf8 => 'from http' } ] }, key => $app);
($s, $r, $took) = finish_http($wait);
is_deeply([ $s, map { $_->{bytes} } @{ $r->{items} } ], [ 200, 'ZnJvbSBodHRw' ], 'a long poll woken by a produce over HTTP');
ok($took < 10, "... at once (${took}s)");
my $start = time;
($status, $reply) = http('/v1/queue.lease', { queue_name => 'jobs', batch_size => 1, client_id => 'c', request_timeout => '300ms' },
	key => $app);
is_deeply([ $status, $reply->{message} ], [ 454, 'request timeout; no items are in the queue, try again' ],
	'a long poll that got nothing: 454');
ok(time - $start >= 0.25, '... after its request_timeout');
# More waiters than pooled connections (8): the ninth waits in line, and is served when a connection frees up.
my @waiters = map { start_http('/v1/queue.lease', { queue_name => 'jobs', batch_size => 1, client_id => "w$_", request_timeout => '20s' }, $app) } 1 .. 9;
usleep(800_000);
sql("SELECT querator.queue_produce_text_batch('jobs', array_fill('x'::text, ARRAY[9]))");
my @got = map { (finish_http($_))[0] } @waiters;
is_deeply(\@got, [ (200) x 9 ], 'nine long polls on a pool of eight all get an item');
# A queue deleted under a waiting lease: 453 (do not retry).
sql("SELECT querator.queues_create('doomed'); SELECT querator.queue_grant('doomed', 'app', 'consume')");
$wait = start_http('/v1/queue.lease', { queue_name => 'doomed', batch_size => 1, client_id => 'd', request_timeout => '30s' }, $app);
usleep(500_000);
sql("SELECT querator.queues_delete('doomed')");
($s, $r) = finish_http($wait);
is_deeply([ $s, $r->{message} ], [ 453, "queue is being deleted; the wait on 'doomed' ends" ], 'a queue deleted under a wait: 453');

# An unexpected failure: 500 with no detail; the detail is in the server log.
sql("ALTER FUNCTION querator.queue_stats(text) RENAME TO queue_stats_elsewhere");
($status, $reply) = http('/v1/queue.stats', { queue_name => 'jobs' }, key => $admin);
is_deeply([ $status, $reply->{message} ], [ 500, 'internal error; see the server log' ], 'an internal failure: 500');
sql("ALTER FUNCTION querator.queue_stats_elsewhere(text) RENAME TO queue_stats");
like(slurp_file($node->logfile), qr/querator http server\[\d+\]: request \/v1\/queue.stats failed: ERROR:  function querator.queue_stats/,
	'... logged in full');

# ------------------------------------------------------------ kill -9 of the HTTP server under load
sql("SELECT querator.queues_create('load', lease_timeout => '2 seconds'); SELECT querator.queue_grant('load', 'app', p) FROM unnest(ARRAY['produce', 'consume']) p");
my $postmaster_start = sql("SELECT pg_postmaster_start_time()");
my $load_out = '';
my $load = IPC::Run::start([ 'python3', ($ENV{QUERATOR_SRC} // ".") . "/test/http_load.py", $port, $app, 'load', '6', '4' ],
	'>', \$load_out, IPC::Run::timeout(60));
usleep(2_000_000);
my $victim = server_pid();
ok($victim, "the HTTP server process ($victim)");
kill 'KILL', $victim;
$load->finish;
my $summary = $json->decode($load_out);
ok($summary->{connection_failures} > 0, "the load saw the kill ($summary->{connection_failures} failed connections)");
ok(wait_for_api(), 'the server is back');
isnt(server_pid(), $victim, '... as a new process');
is(sql("SELECT pg_postmaster_start_time()"), $postmaster_start, 'PostgreSQL did not restart');
ok(@{ $summary->{completed} } > 10 && @{ $summary->{produced} } > 10,
	scalar(@{ $summary->{produced} }) . ' produced, ' . scalar(@{ $summary->{completed} }) . ' completed over HTTP');
# Leases that the kill cut off expire (2 s) and their items come back.
my %left = map { $_ => 1 } split /\n/, sql("SELECT convert_from(payload, 'UTF8') FROM querator.storage_items_list('load', NULL, 10000)");
my %sent = map { $_ => 1 } @{ $summary->{complete_sent} };
my @lost = grep { !$left{$_} && !$sent{$_} } @{ $summary->{produced} };
is_deeply(\@lost, [], 'every acknowledged produce is still queued or was completed');
my @revived = grep { $left{$_} } @{ $summary->{completed} };
is_deeply(\@revived, [], 'no acknowledged complete left its item behind');

# pg_terminate_backend of the pool's connections and of the supervisor: both come back.
my $before = server_pid();
sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'querator http'");
my $back = 0;
for (1 .. 100)
{
	my $pid = eval { server_pid() };
	$back = 1, last if $pid && $pid ne $before && wait_for_api();
	usleep(100_000);
}
ok($back, 'pg_terminate_backend of the supervisor and the pool: a new server process answers');
($status) = http('/v1/queues.list', {}, key => $admin);
is($status, 200, '... with new pooled connections');

# ------------------------------------------------------------ shutdown answers a waiting lease with 453, within a second
$wait = start_http('/v1/queue.lease', { queue_name => 'jobs', batch_size => 1, client_id => 'last', request_timeout => '60s' }, $app);
usleep(500_000);
$start = time;
$node->stop('fast');
my $stop_took = time - $start;
($s, $r) = finish_http($wait);
is_deeply([ $s, $r->{message} ], [ 453, 'service is shutting down; try another server' ], 'shutdown: a waiting lease gets 453');
ok($stop_took < 5, "the server stopped in ${stop_took}s");
like(slurp_file($node->logfile), qr/querator http stopping/, 'the supervisor logged its stop');

# ------------------------------------------------------------ HTTPS with querator.http_tls_cert_file / _key_file
my $tls = $PostgreSQL::Test::Utils::tmp_check;
my ($openssl_out, $openssl_err) = ('', '');
IPC::Run::run([ 'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
	'-keyout', "$tls/key.pem", '-out', "$tls/cert.pem" ], '>', \$openssl_out, '2>', \$openssl_err) or die $openssl_err;
chmod 0600, "$tls/key.pem";
$node->append_conf('postgresql.conf',
	"querator.http_tls_cert_file = '$tls/cert.pem'\nquerator.http_tls_key_file = '$tls/key.pem'\n");
$node->start;
$url = "https://127.0.0.1:$port";
my $https = '';
for (1 .. 100)
{
	IPC::Run::run([ 'curl', '-s', '-k', '-o', '/dev/null', '-w', '%{http_code}', "$url/health" ], '>', \$https, '2>', \my $e);
	last if $https eq '200';
	usleep(100_000);
}
is($https, '200', 'HTTPS with the certificate and key settings');
($status, $reply) = http('/v1/queues.list', {}, key => $admin, curl => ['-k']);
is($status, 200, '... the API over it');
$node->stop('fast');

done_testing();
