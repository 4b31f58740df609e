# The load with a ledger of test/t/003_crash.pl, shared with the failover test
# (093): sessions produce, lease, complete and retry items of the queue 'load'
# and log every committed step in a ledger table in the same transaction, so
# that after a crash (or a failover) the ledger says what was committed, and
# check_ledger proves that every committed item is completed or present,
# exactly once, and that no item was leased twice while a lease held.
package QueratorLedger;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use Time::HiRes ();
use Test::More;
use QueratorTap;

our @EXPORT = qw(ledger_sql start_load finish_load wait_for_progress check_ledger load_backend_pid kill9_and_recover);

# The ledger, the load procedure and present_items(), for a database whose queue 'load' exists.
sub ledger_sql
{
	return <<'SQL';
CREATE TABLE ledger (
    event          text NOT NULL,  -- produced | leased | completed | retried
    token          text NOT NULL,  -- the payload, unique per produced item
    item_id        bigint NOT NULL,
    at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_deadline timestamptz
);
CREATE TABLE load_errors (run int, session int, step text, message text);

-- One load session: produce 3 (one in five rounds scheduled 1 s ahead), lease
-- up to 4, then complete them, retry them (one round in eleven) or abandon
-- them to the worker (one round in seven). Every step is its own transaction.
CREATE PROCEDURE load(run int, session int, seconds float8)
LANGUAGE plpgsql AS $$
DECLARE
    stop_at timestamptz := clock_timestamp() + seconds * interval '1 s';
    n int := 0;
    tok text;
    new_id bigint;
    ids bigint[];
    toks text[];
    deadlines timestamptz[];
    failed text;
BEGIN
    WHILE clock_timestamp() < stop_at LOOP
        n := n + 1;
        failed := NULL;
        BEGIN
            FOR i IN 1..3 LOOP
                tok := format('%s-%s-%s-%s', run, session, n, i);
                new_id := querator.queue_produce('load', tok,
                    enqueue_at => CASE WHEN n % 5 = 0 AND i = 1 THEN clock_timestamp() + interval '1 s' END);
                INSERT INTO ledger (event, token, item_id) VALUES ('produced', tok, new_id);
            END LOOP;
        EXCEPTION WHEN others THEN GET STACKED DIAGNOSTICS failed = PG_EXCEPTION_DETAIL; failed := SQLERRM || ' / ' || failed;
        END;
        IF failed IS NOT NULL THEN
            INSERT INTO load_errors VALUES (run, session, 'produce', failed);
        END IF;
        COMMIT;

        failed := NULL;
        ids := NULL;
        BEGIN
            SELECT array_agg(l.id), array_agg(convert_from(l.payload, 'UTF8')), array_agg(l.lease_deadline)
              INTO ids, toks, deadlines
              FROM querator.queue_lease('load', format('s%s-%s', run, session), 4) l;
            INSERT INTO ledger (event, token, item_id, lease_deadline)
                SELECT 'leased', t, i, d FROM unnest(toks, ids, deadlines) AS u(t, i, d);
        EXCEPTION WHEN others THEN GET STACKED DIAGNOSTICS failed = PG_EXCEPTION_DETAIL; failed := SQLERRM || ' / ' || failed; ids := NULL;
        END;
        IF failed IS NOT NULL THEN
            INSERT INTO load_errors VALUES (run, session, 'lease', failed);
        END IF;
        COMMIT;

        CONTINUE WHEN ids IS NULL OR n % 7 = 0;
        failed := NULL;
        BEGIN
            IF n % 11 = 0 THEN
                PERFORM querator.queue_retry('load', ids);
                INSERT INTO ledger (event, token, item_id)
                    SELECT 'retried', t, i FROM unnest(toks, ids) AS u(t, i);
            ELSE
                PERFORM querator.queue_complete('load', ids);
                INSERT INTO ledger (event, token, item_id)
                    SELECT 'completed', t, i FROM unnest(toks, ids) AS u(t, i);
            END IF;
        EXCEPTION WHEN others THEN GET STACKED DIAGNOSTICS failed = PG_EXCEPTION_DETAIL; failed := SQLERRM || ' / ' || failed;
        END;
        IF failed IS NOT NULL THEN
            INSERT INTO load_errors VALUES (run, session, 'complete', failed);
        END IF;
        COMMIT;
    END LOOP;
END $$;

-- Every item present in the queue, whatever its state, paging through the three lists
-- (a page of 10,000 rows at most: pivot is the next id after the page).
CREATE FUNCTION present_items() RETURNS TABLE (token text, state text)
LANGUAGE plpgsql AS $$
DECLARE
    list text;
    pivot bigint;
    got int;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS page (id bigint, token text, state text);
    FOREACH list IN ARRAY ARRAY['items', 'scheduled', 'dead'] LOOP
        pivot := 0;
        LOOP
            TRUNCATE page;
            INSERT INTO page
                SELECT i.id, convert_from(i.payload, 'UTF8'), CASE WHEN i.leased THEN 'leased' ELSE 'ready' END
                  FROM querator.storage_items_list('load', pivot, 10000) i WHERE list = 'items'
                UNION ALL
                SELECT s.id, convert_from(s.payload, 'UTF8'), 'scheduled'
                  FROM querator.storage_scheduled_list('load', pivot, 10000) s WHERE list = 'scheduled'
                UNION ALL
                SELECT d.id, convert_from(d.payload, 'UTF8'), 'dead'
                  FROM querator.storage_dead_list('load', pivot, 10000) d WHERE list = 'dead';
            GET DIAGNOSTICS got = ROW_COUNT;
            RETURN QUERY SELECT p.token, p.state FROM page p;
            EXIT WHEN got < 10000;
            SELECT max(id) + 1 INTO pivot FROM page;
        END LOOP;
    END LOOP;
END $$;
SQL
}

# Starts $n load sessions of run $run for $seconds; returns the harnesses.
sub start_load
{
	my ($node, $db, $run, $n, $seconds) = @_;
	my @sessions;
	for my $s (1 .. $n)
	{
		my %io = (out => '', err => '');
		my $h = IPC::Run::start(
			[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db),
			  '-c', "CALL load($run, $s, $seconds)" ],
			'<', \undef, '>', \$io{out}, '2>', \$io{err},
			IPC::Run::timeout($seconds + 60));
		push @sessions, { h => $h, io => \%io };
	}
	return @sessions;
}

# Waits for the sessions to end; returns how many ended with exit status 0.
sub finish_load
{
	my $ok = 0;
	for my $s (@_)
	{
		eval { $s->{h}->finish; 1 } or do { $s->{h}->kill_kill; next; };
		$ok++ if $s->{h}->result == 0;
	}
	return $ok;
}

# The pid of the backend running load session $session of run $run ('' if none within 10 s).
sub load_backend_pid
{
	my ($node, $db, $run, $session) = @_;
	for (1 .. 100)
	{
		my $pid = $node->safe_psql($db, "SELECT pid FROM pg_stat_activity
			WHERE query LIKE 'CALL load($run, $session,%' AND backend_type = 'client backend'");
		return $pid if $pid ne '';
		Time::HiRes::usleep(100_000);
	}
	return '';
}

# Kills $pid with SIGKILL and waits for the crash restart to finish and the worker of $db to return.
sub kill9_and_recover
{
	my ($node, $db, $pid, $what) = @_;
	my $offset = -s $node->logfile;
	ok(kill('KILL', $pid), "kill -9 $what (pid $pid)");
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	ok(wait_for_server($node, 60), "the cluster crash-restarted after kill -9 of $what");
	ok(wait_for_workers($node, $db, 1, 15), "the worker came back after kill -9 of $what");
	return;
}

# Waits until the load has committed at least $n more completions.
sub wait_for_progress
{
	my ($node, $db, $n) = @_;
	my $base = $node->safe_psql($db, "SELECT count(*) FROM ledger WHERE event = 'completed'");
	return defined poll_until($node, $db,
		"SELECT count(*) >= $base + $n FROM ledger WHERE event = 'completed'", 't', 20, 50);
}

# The ledger's verdict, as tests: first waits (15 s at most) until only ready and
# dead items remain (every abandoned lease expired, every scheduled item
# promoted, by the worker); the load must have produced more than $min_produced items.
sub check_ledger
{
	my ($node, $db, $min_produced) = @_;
	my $sql = sub { return $node->safe_psql($db, $_[0]); };
	ok(defined poll_until($node, $db,
			"SELECT count(*) FROM querator.storage_items_list('load', NULL, 10000) WHERE leased", '0', 15, 100),
		'the worker expired every lease the load abandoned');
	ok(defined poll_until($node, $db,
			"SELECT count(*) FROM querator.storage_scheduled_list('load', NULL, 10000)", '0', 15, 100),
		'and promoted every scheduled item');
	$sql->('CREATE TABLE present AS SELECT * FROM present_items()');

	my %stats = map { split /=/ } split /\n/, $sql->(<<'SQL');
SELECT 'produced=' || count(*) FROM ledger WHERE event = 'produced'
UNION ALL SELECT 'completed=' || count(*) FROM ledger WHERE event = 'completed'
UNION ALL SELECT 'leases=' || count(*) FROM ledger WHERE event = 'leased'
UNION ALL SELECT 'present=' || count(*) FROM present
UNION ALL SELECT 'dead=' || count(*) FROM present WHERE state = 'dead'
SQL
	note(join(', ', map { "$_ $stats{$_}" } sort keys %stats));
	cmp_ok($stats{produced}, '>', $min_produced, 'the load produced a fair number of items');

	is($sql->("SELECT count(*) FROM (SELECT token FROM ledger WHERE event = 'produced' GROUP BY token HAVING count(*) > 1) d"),
		'0', 'each token was produced once (sanity)');
	is($sql->(<<'SQL'), '', 'every committed item is completed or present, exactly once');
WITH fate AS (
    SELECT token, 'completed' AS state FROM ledger WHERE event = 'completed'
    UNION ALL SELECT token, state FROM present)
SELECT string_agg(p.token || ':' || coalesce(f.states, 'LOST'), ' ')
FROM (SELECT token FROM ledger WHERE event = 'produced') p
LEFT JOIN (SELECT token, string_agg(state, ',' ORDER BY state) AS states, count(*) AS n FROM fate GROUP BY token) f
  USING (token)
WHERE f.n IS DISTINCT FROM 1
SQL
	is($sql->(<<'SQL'), '', 'nothing present or completed that was never produced');
SELECT string_agg(token, ' ') FROM (
    SELECT token FROM present UNION SELECT token FROM ledger WHERE event = 'completed'
    EXCEPT SELECT token FROM ledger WHERE event = 'produced') x
SQL
	is($sql->(<<'SQL'), '', 'no item was leased again while an earlier lease of it was valid (and not retried)');
SELECT string_agg(token || ' leased at ' || at || ' before ' || previous_deadline, E'\n') FROM (
    SELECT token, event, at,
           lag(event) OVER w AS previous_event, lag(lease_deadline) OVER w AS previous_deadline
    FROM ledger WHERE event IN ('leased', 'retried')
    WINDOW w AS (PARTITION BY token ORDER BY at)) x
WHERE event = 'leased' AND previous_event = 'leased' AND at < previous_deadline
SQL
	is($sql->(<<'SQL'), '0', 'no completed item was leased again');
SELECT count(*) FROM ledger l JOIN ledger c USING (token)
WHERE l.event = 'leased' AND c.event = 'completed' AND l.at > c.at
SQL

	my $errors = $sql->("SELECT string_agg(step || ': ' || message || ' (x' || n || ')', E'\n')
	                  FROM (SELECT step, message, count(*) AS n FROM load_errors GROUP BY 1, 2) e");
	note("errors the load caught and carried on from:\n$errors") if $errors ne '';
	return;
}

1;
