# A queue over three shards through the router (querator_router on PL/Proxy,
# docs/scaling.md). Three throw-away querator clusters and a router cluster:
#  1. the routing itself: partition p on shard p mod 3, ids translated both
#     ways, errors with the caller's ids, all or none per shard;
#  2. 10,000 items produced by 2 sessions and consumed by 8 through the
#     router, each exactly once (a ledger in the router database), every
#     shard holding a share;
#  3. kill -9 of one shard under load, and its restart: calls that need it
#     fail with 08006 naming it, the others go on, and nothing committed is
#     lost or leased twice while a lease holds.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);
use QueratorTap;

my @shards = map { querator_node("shard$_", "restart_after_crash = on\n") } 0 .. 2;
$_->safe_psql('postgres', 'CREATE EXTENSION querator') for @shards;

my $router = PostgreSQL::Test::Cluster->new('router');
$router->init;
$router->append_conf('postgresql.conf', "listen_addresses = ''\n");
$router->start;
my $db = 'postgres';

sub sql { return $router->safe_psql($db, $_[0]); }

# The call's error (SQLSTATE and message), or '' when it succeeded.
sub router_error
{
	my ($query) = @_;
	my ($ret, $out, $err) = $router->psql($db, $query, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return $ret == 0 ? '' : $err;
}

my $options = join(', ',
	map { sprintf("p%d 'host=%s port=%d dbname=postgres connect_timeout=2'", $_, $shards[$_]->host, $shards[$_]->port) }
	  0 .. 2);
sql(<<"SQL");
CREATE EXTENSION plproxy;
CREATE EXTENSION querator_router;
CREATE SERVER querator_shards FOREIGN DATA WRAPPER plproxy OPTIONS (modular_mapping '1', $options);
CREATE USER MAPPING FOR PUBLIC SERVER querator_shards;
SQL

# A schema querator made beforehand by someone else (here with a function in it) is refused.
$router->safe_psql($db, 'CREATE DATABASE taken');
$router->safe_psql('taken', 'CREATE EXTENSION plproxy; CREATE SCHEMA querator; '
	  . 'CREATE FUNCTION querator.queue_complete(text, integer) RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$');
my ($taken_ret, $taken_out, $taken_err) =
  $router->psql('taken', 'CREATE EXTENSION querator_router', extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($taken_err, qr/55000: schema querator exists already and is not the installer's alone: it holds function (querator\.)?queue_complete\(text,integer\)/,
	'CREATE EXTENSION querator_router refuses a schema querator that holds another\'s function');

# --- 1. routing

sql("SELECT querator.queues_create('route', partitions => 3)");
is(sql("SELECT partitions FROM querator.queues_info('route')"), '3', 'a queue of 3 partitions through the router');
is(join(',', map { $_->safe_psql($db, "SELECT partitions FROM querator.queues_info('route')") } @shards),
	'1,1,1', 'one partition on each shard');

my @ids = split /\n/, sql("SELECT unnest(querator.queue_produce_text_batch('route', ARRAY['a', 'b'])) "
	  . "UNION ALL SELECT querator.queue_produce_text('route', 'c') "
	  . "UNION ALL SELECT querator.queue_produce_text('route', 'd')");
my %shard_of_id = map { $_ => ($_ >> 48) % 3 } @ids;
is(scalar(keys %{ { map { $_ => 1 } values %shard_of_id } }), 3, 'produce takes turns over the shards');
for my $s (0 .. 2)
{
	my @here = grep { $shard_of_id{$_} == $s } @ids;
	my $local = join(',', map { ((($_ >> 48) - $s) / 3) << 48 | ($_ & ((1 << 48) - 1)) } @here);
	is($shards[$s]->safe_psql($db,
			"SELECT string_agg(id::text, ',' ORDER BY id) FROM querator.storage_items_list('route')"),
		$local, "shard $s holds partition $s\'s items under its own partition 0");
}

my $leased = sql("SELECT string_agg(id || ':' || partition || ':' || convert_from(payload, 'UTF8'), ' ' ORDER BY id) "
	  . "FROM (SELECT * FROM querator.queue_lease('route', 'c1', 10) UNION ALL SELECT * FROM querator.queue_lease('route', 'c1', 10) "
	  . "UNION ALL SELECT * FROM querator.queue_lease('route', 'c1', 10)) l");
is(scalar(split / /, $leased), 4, 'three leases through the router take the four items');
for my $item (split / /, $leased)
{
	my ($id, $partition) = split /:/, $item;
	is($partition, $id >> 48, "leased id $id names its partition $partition");
}

my $unknown = (1 << 48) | 999999;    # partition 1: shard 1, its own partition 0
like(router_error("SELECT querator.queue_complete('route', ARRAY[$unknown])"),
	qr/42704: .*'$unknown' does not exist/, 'an error names the id as the caller gave it');
my ($on0) = grep { $shard_of_id{$_} == 0 } @ids;
like(router_error("SELECT querator.queue_complete('route', ARRAY[$on0, $unknown])"),
	qr/DETAIL:  the ids on shard\(s\) 0 were completed and stay so/,
	'across shards: the shard before the failing one committed, and the error says so');
is(sql("SELECT count(*) FROM querator.queue_stats('route') WHERE total_leased > 0"), '2',
	'... its item is gone, the other shards\' stay leased');
is(sql("SELECT querator.queue_complete('route', ARRAY(SELECT unnest(ARRAY[" . join(',', @ids) . "]) EXCEPT SELECT $on0))"),
	'3', 'a complete across the three shards');
is(router_error("SELECT querator.queue_complete('route', ARRAY[[1]])") =~ /22023: ids is invalid; must be a one-dimensional/
	  ? 1 : 0, 1, 'a malformed id list gets querator\'s own error');

# Privileges are the shards': PL/Proxy connects as the calling role.
$_->safe_psql($db, 'CREATE ROLE app LOGIN') for @shards, $router;
sql('GRANT USAGE ON FOREIGN SERVER querator_shards TO app');
sql("SELECT querator.queue_grant('route', 'app', 'produce')");
is(router_error("SET ROLE app; SELECT querator.queue_produce_text_batch('route', ARRAY['p1', 'p2', 'p3'])"), '',
	'a role granted produce on every shard produces through the router');
like(router_error("SET ROLE app; SELECT * FROM querator.queue_lease('route', 'app', 1)"), qr/ERROR:  42501: /,
	'... and may not lease: the shard says so (42501)');
is(sql("SELECT querator.queue_clear('route')"), '3', 'queue_clear removes the items of every shard, summed');

# The caller's search_path captures nothing: a schema before pg_catalog with a convert_to
# that the text form would call if it resolved names there.
sql('CREATE SCHEMA evil; CREATE FUNCTION evil.convert_to(text, name) RETURNS bytea LANGUAGE sql '
	  . "AS \$\$ SELECT 'captured'::bytea \$\$");
is(sql("SET search_path = evil, pg_catalog; SELECT querator.queue_produce('route', 'plain'::text) IS NOT NULL; "
		  . "SELECT convert_from(payload, 'UTF8') || ' ' || querator.queue_complete('route', id) "
		  . "FROM querator.queue_lease('route', 'evil', 1)"),
	"t\nplain 1", 'a caller\'s schema before pg_catalog captures none of the router\'s calls');

# A long poll waits on one shard at a time: an item that arrives on another shard
# reaches it within a slice or two, not at the end of its 20 s wait.
my $first = sql("SELECT (hashtext('waiter')::bigint & 2147483647) % 3");
my ($waiter_out, $waiter_err) = ('', '');
my $waiter = IPC::Run::start(
	[ 'psql', '-X', '-At', '-d', $router->connstr($db), '-c',
	  "SELECT extract(epoch FROM clock_timestamp() - statement_timestamp())::int || ' ' || convert_from(payload, 'UTF8') "
	  . "FROM querator.queue_lease('route', 'waiter', 1, '20 s')" ],
	'<', \undef, '>', \$waiter_out, '2>', \$waiter_err, IPC::Run::timeout(60));
usleep(1_500_000);
$shards[ ($first + 1) % 3 ]->safe_psql($db, "SELECT querator.queue_produce_text('route', 'late')");
$waiter->finish;
like($waiter_out, qr/^[0-4] late$/, 'a long poll through the router finds an item that came to another shard')
  or diag("waiter: $waiter_out $waiter_err");

# --- 2. 10,000 items, 2 producers, 8 consumers

sql(<<'SQL');
CREATE TABLE ledger (run int, event text, token text, item_id bigint, at timestamptz DEFAULT clock_timestamp(),
                     lease_deadline timestamptz);
CREATE TABLE load_errors (run int, who text, message text);
CREATE TABLE uncertain (run int, token text);
CREATE TABLE control (run int PRIMARY KEY, stop boolean NOT NULL DEFAULT false);

-- Batches of text items named run-session-batch-i; a failed call's tokens may have committed: uncertain.
CREATE PROCEDURE produce(queue text, run int, session int, batches int, size int, pause float8)
LANGUAGE plpgsql AS $$
DECLARE
    toks text[];
    ids bigint[];
BEGIN
    FOR b IN 1 .. batches LOOP
        toks := ARRAY(SELECT format('%s-%s-%s-%s', run, session, b, i) FROM generate_series(1, size) i);
        BEGIN
            ids := querator.queue_produce_text_batch(queue, toks);
            INSERT INTO ledger (run, event, token, item_id) SELECT run, 'produced', t, i FROM unnest(toks, ids) u(t, i);
        EXCEPTION WHEN others THEN
            INSERT INTO load_errors VALUES (run, 'producer', SQLSTATE || ' ' || SQLERRM);
            INSERT INTO uncertain SELECT run, t FROM unnest(toks) t;
        END;
        COMMIT;
        PERFORM pg_sleep(pause);
    END LOOP;
END $$;

-- The consumer loop: each call completes the previous batch and leases the
-- next (long poll 1 s); after a failed call its batch is dropped (its leases
-- expire). Ends when a call leased nothing and the test said stop.
CREATE PROCEDURE consume(queue text, run int, session int)
LANGUAGE plpgsql AS $$
DECLARE
    done bigint[];
    done_toks text[];
    ids bigint[];
    toks text[];
    deadlines timestamptz[];
BEGIN
    LOOP
        ids := NULL;
        BEGIN
            SELECT array_agg(l.id), array_agg(convert_from(l.payload, 'UTF8')), array_agg(l.lease_deadline)
              INTO ids, toks, deadlines
              FROM querator.queue_complete_and_lease(queue, format('c%s-%s', run, session), done, 10, '1 s') l;
            INSERT INTO ledger (run, event, token, item_id) SELECT run, 'completed', t, i FROM unnest(done_toks, done) u(t, i);
            INSERT INTO ledger (run, event, token, item_id, lease_deadline)
                SELECT run, 'leased', t, i, d FROM unnest(toks, ids, deadlines) u(t, i, d);
        EXCEPTION WHEN others THEN
            INSERT INTO load_errors VALUES (run, 'consumer', SQLSTATE || ' ' || SQLERRM);
            ids := NULL;
        END;
        done := ids;
        done_toks := toks;
        COMMIT;
        EXIT WHEN ids IS NULL AND (SELECT stop FROM control c WHERE c.run = consume.run);
    END LOOP;
END $$;
SQL

sub start_sessions
{
	my (@calls) = @_;
	my @sessions;
	for my $call (@calls)
	{
		my %io = (out => '', err => '');
		my $h = IPC::Run::start(
			[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $router->connstr($db), '-c', $call ],
			'<', \undef, '>', \$io{out}, '2>', \$io{err}, IPC::Run::timeout(180));
		push @sessions, { h => $h, io => \%io, call => $call };
	}
	return @sessions;
}

# Waits for the sessions; returns how many ended with exit status 0 (diagnoses the others).
sub finish_sessions
{
	my $ok = 0;
	for my $s (@_)
	{
		eval { $s->{h}->finish; 1 } or do { $s->{h}->kill_kill; };
		if ($s->{h}->result == 0) { $ok++ } else { diag("$s->{call}: $s->{io}{err}") }
	}
	return $ok;
}

# Stops run $run's consumers once the router sees no item left on any shard.
sub drain_and_stop
{
	my ($queue, $run) = @_;
	my $drained = poll_until($router, $db,
		"SELECT sum(total) = 0 AND sum(scheduled) = 0 FROM querator.queue_stats('$queue')", 't', 90, 200);
	sql("UPDATE control SET stop = true WHERE run = $run");
	return defined $drained;
}

sql("SELECT querator.queues_create('jobs', partitions => 6)");
sql("INSERT INTO control VALUES (1)");
my @load = start_sessions((map { "CALL produce('jobs', 1, $_, 100, 50, 0)" } 1 .. 2),
	(map { "CALL consume('jobs', 1, $_)" } 1 .. 8));
ok(drain_and_stop('jobs', 1), 'the 8 consumers drained the queue');
is(finish_sessions(@load), 10, 'every producer and consumer session ended cleanly');
is(sql("SELECT count(*) FROM load_errors WHERE run = 1"), '0', 'no call failed');
is(sql("SELECT count(*) || ' ' || count(DISTINCT token) FROM ledger WHERE run = 1 AND event = 'produced'"),
	'10000 10000', '10,000 items produced');
is(sql("SELECT count(*) || ' ' || count(DISTINCT token) FROM ledger WHERE run = 1 AND event = 'leased'"),
	'10000 10000', 'each leased exactly once');
is(sql("SELECT count(*) || ' ' || count(DISTINCT token) FROM ledger WHERE run = 1 AND event = 'completed'"),
	'10000 10000', 'each completed exactly once');
is(sql("SELECT count(*) FROM (SELECT token FROM ledger WHERE run = 1 AND event = 'produced' "
		  . "EXCEPT SELECT token FROM ledger WHERE run = 1 AND event = 'completed') x"), '0',
	'the completed items are the produced ones');
my @share = map { $_->safe_psql($db, "SELECT sum(produced) FROM querator.queue_stats('jobs')") } @shards;
note("items per shard: @share");
ok((grep { $_ >= 2000 } @share) == 3, 'every shard held a share of the items (at least a fifth)');
is(sql("SELECT sum(produced) || ' ' || sum(completed) || ' ' || count(*) FROM querator.queue_stats('jobs')"),
	'10000 10000 6', 'the router\'s stats sum the shards, one row per partition');

# --- 3. kill -9 of shard 1 under load, then its restart

sql("SELECT querator.queues_create('crash', lease_timeout => '2 s', partitions => 3)");
sql("INSERT INTO control VALUES (2)");
@load = start_sessions((map { "CALL produce('crash', 2, $_, 60, 25, 0.1)" } 1 .. 2),
	(map { "CALL consume('crash', 2, $_)" } 1 .. 4));
ok(defined poll_until($router, $db, "SELECT count(*) >= 500 FROM ledger WHERE run = 2 AND event = 'completed'",
		't', 60, 50), 'the load runs');

cmp_ok(kill9_server($shards[1]), '>', 5, 'kill -9 of shard 1: the postmaster and all its processes');
my $on_shard1 = (1 << 48) | 1;
like(router_error("SELECT querator.queue_complete('crash', ARRAY[$on_shard1])"),
	qr/08006: shard is unreachable; shard 1 \(option p1 of server querator_shards\)/,
	'with shard 1 down, a complete of its ids fails with 08006 naming it');
like(router_error("SELECT * FROM querator.queue_stats('crash')"), qr/08006: shard is unreachable/,
	'... and so do the stats, which need every shard');
my @probe = split /\n/, sql("SELECT querator.queue_produce_text('crash', 'probe-' || i) FROM generate_series(1, 3) i");
is(scalar(grep { ($_ >> 48) % 3 != 1 } @probe), 3, 'produce goes on, on the shards that answer');
sql("INSERT INTO ledger (run, event, token, item_id) SELECT 2, 'produced', 'probe-' || i, 0 FROM generate_series(1, 3) i");
my $before = sql("SELECT count(*) FROM ledger WHERE run = 2 AND event = 'completed'");
ok(defined poll_until($router, $db,
		"SELECT count(*) >= $before + 200 FROM ledger WHERE run = 2 AND event = 'completed'", 't', 30, 50),
	'consumers go on completing from the other shards');

$shards[1]->start;
ok(wait_for_workers($shards[1], $db, 1, 30), 'shard 1 is back, with its worker');
is(finish_sessions(@load[0, 1]), 2, 'the producers ran to their end');
ok(drain_and_stop('crash', 2), 'the consumers drained the queue, shard 1 included');
is(finish_sessions(@load[2 .. 5]), 4, 'the consumers ended cleanly');

my $errors = sql("SELECT string_agg(DISTINCT who || ': ' || message, E'\n') FROM load_errors WHERE run = 2");
note("calls that failed during the crash:\n$errors");
is(sql("SELECT count(*) FROM load_errors WHERE run = 2 AND message !~ "
		  . "'^(08006 (shard is unreachable; shard 1 |no shard is reachable)|55000 .* is not leased|42704 .* does not exist)'"),
	'0', 'the only failures: shard 1 unreachable, or a batch whose leases expired meanwhile');
is(sql("SELECT string_agg(token, ' ') FROM (SELECT token FROM ledger WHERE run = 2 AND event = 'produced' "
		  . "EXCEPT SELECT token FROM ledger WHERE run = 2 AND event = 'completed') x"), '',
	'every committed item was completed: nothing lost');
is(sql("SELECT string_agg(token, ' ') FROM (SELECT token FROM ledger WHERE run = 2 AND event = 'completed' "
		  . "EXCEPT SELECT token FROM ledger WHERE run = 2 AND event = 'produced' EXCEPT SELECT token FROM uncertain) x"), '',
	'nothing completed that was never produced (but by a produce call that failed)');
is(sql(<<'SQL'), '', 'no item leased again while an earlier lease of it held');
SELECT string_agg(token || ' at ' || at || ' before ' || previous_deadline, E'\n') FROM (
    SELECT token, at, lag(lease_deadline) OVER (PARTITION BY token ORDER BY at) AS previous_deadline
      FROM ledger WHERE run = 2 AND event = 'leased') l
 WHERE at < previous_deadline
SQL

$router->stop;
$_->stop for @shards;
done_testing();
