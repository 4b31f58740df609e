# Fuzz test (issue 11, "What must show"): random calls of every SQL function of
# the extension (every overload in schema querator) with arguments drawn from a
# pool of edge values, for a bounded time, from two sessions (a superuser and a
# role with a few grants). It asserts that
#   - every call succeeds or fails with a SQLSTATE the README's "Errors" section
#     documents, and that no error shows querator's internal tables or SQL;
#   - the server never crashes (the sessions survive, the log has no signal);
#   - the storage invariants hold afterwards (and every 20 s): every item is in
#     exactly one of items / scheduled / dead, leases only on existing items of
#     their partition, ids in the partition they name, no item scheduled or
#     leased for ever, tables only for the queues and partitions of the catalog.
# Each distinct failure is printed once with the call that caused it.
#
#   QUERATOR_FUZZ_SECONDS  run time (default 75)
#   QUERATOR_FUZZ_SEED     seed of the call sequence (default: random, printed)
# Replay: QUERATOR_FUZZ_SEED=<seed> QUERATOR_ONLY=fuzz scripts/test.sh. The
# sequence of calls depends on the seed only, up to the ids and queue names
# read back from the server (which depend on timing).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use QueratorTap;

my $seconds = $ENV{QUERATOR_FUZZ_SECONDS} // 75;
my $seed = $ENV{QUERATOR_FUZZ_SEED} // int(rand(2**31));
srand($seed);
diag("fuzz seed $seed, $seconds s (replay with QUERATOR_FUZZ_SEED=$seed)");

my $node = querator_node('fuzz', "log_min_messages = warning\n");
my $db = 'postgres';
sub sql { return $node->safe_psql($db, $_[0]); }

# --- the documented SQLSTATEs: the second column of README's "Errors" table ---
my $readme = slurp_file(($ENV{QUERATOR_SRC} // ".") . "/README.md");
my ($errors_section) = $readme =~ /^## Errors\n(.*?)^## /ms;
my %documented;
for my $line (split /\n/, $errors_section // '')
{
	my @cols = split /\|/, $line;
	next unless @cols > 2;
	$documented{$_} = 1 for $cols[2] =~ /\b([0-9A-Z]{5})\b/g;
}
ok(keys %documented >= 5, 'the README documents the SQLSTATEs: ' . join(' ', sort keys %documented));
# Any call running longer than this is a failure (a hang), except a lease that
# waits legitimately: it runs with a short timeout and may end with 57014.
my $statement_timeout_ms = 20000;
my $wait_timeout_ms = 1000;

# --- schema, roles and queues to play with ------------------------------------
sql(<<'SQL');
CREATE EXTENSION querator;
CREATE ROLE fuzz_app LOGIN;
SELECT querator.queues_create('fz_dead');
SELECT querator.queues_create('fz_a');
SELECT querator.queues_create('fz_b', partitions => 4, max_attempts => 2, lease_timeout => '2 seconds');
SELECT querator.queues_create('fz_c', dead_queue => 'fz_dead', expire_timeout => '1 hour');
SELECT querator.queues_create('fz_é名', partitions => 2);
SELECT querator.queue_grant('fz_a', 'fuzz_app', 'produce');
SELECT querator.queue_grant('fz_b', 'fuzz_app', 'consume');
SELECT querator.queue_grant('fz_é名', 'fuzz_app', 'admin');
SELECT querator.queue_produce('fz_' || s, ARRAY['seed-1', 'seed-2', 'seed-3'])
  FROM unnest(ARRAY['a', 'b', 'c', 'dead', 'é名']) s;

-- A random sample of the ids in storage (all queues and partitions, leased ones included).
CREATE FUNCTION fuzz_ids(n int) RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
	parts text[];
BEGIN
	SELECT array_agg(format('SELECT id FROM querator_data.%I', relname)) INTO parts
	  FROM pg_class WHERE relnamespace = 'querator_data'::regnamespace AND relkind = 'r';
	IF parts IS NULL THEN
		RETURN;
	END IF;
	RETURN QUERY EXECUTE 'SELECT id FROM (' || array_to_string(parts, ' UNION ALL ') || ') s ORDER BY random() LIMIT $1' USING n;
END
$$;

-- Leased ids with their queue's name (hex), so complete / retry / extend can succeed.
CREATE FUNCTION fuzz_leased(n int) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	parts text[];
BEGIN
	SELECT array_agg(format('SELECT %L::text AS name, id FROM querator_data.q%s_p%s_leases',
	                        encode(convert_to(q.name, 'UTF8'), 'hex'), q.id, p))
	  INTO parts
	  FROM querator.queues q, generate_series(0, q.partitions - 1) p
	 WHERE to_regclass(format('querator_data.q%s_p%s_leases', q.id, p)) IS NOT NULL;
	IF parts IS NULL THEN
		RETURN;
	END IF;
	RETURN QUERY EXECUTE 'SELECT name || '':'' || id FROM (' || array_to_string(parts, ' UNION ALL ')
	                     || ') s ORDER BY random() LIMIT $1' USING n;
END
$$;

-- The storage invariants, read from the tables themselves: one row per violation.
CREATE FUNCTION fuzz_invariants() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	qu record;
	p int;
	t text;
BEGIN
	CREATE TEMP TABLE IF NOT EXISTS fz_rows (q int, place text, part int, id bigint, origin bigint,
	                                         source_queue int, due timestamptz);
	CREATE TEMP TABLE IF NOT EXISTS fz_leases (q int, part int, id bigint, deadline timestamptz);
	CREATE TEMP TABLE IF NOT EXISTS fz_expected (relname text);
	TRUNCATE fz_rows, fz_leases, fz_expected;
	FOR qu IN SELECT id, name, partitions, dead_queue FROM querator.queues LOOP
		INSERT INTO fz_expected VALUES (format('q%s_seq', qu.id)), (format('q%s_dead', qu.id));
		IF to_regclass(format('querator_data.q%s_dead', qu.id)) IS NULL THEN
			RETURN NEXT format('queue %L has no dead-letter table', qu.name);
		ELSE
			EXECUTE format('INSERT INTO fz_rows SELECT %s, ''dead'', partition, id, origin_id, source_queue, NULL
			                  FROM querator_data.q%s_dead', qu.id, qu.id);
		END IF;
		IF qu.dead_queue IS NOT NULL AND NOT EXISTS (SELECT 1 FROM querator.queues WHERE name = qu.dead_queue) THEN
			RETURN NEXT format('queue %L names the missing dead queue %L', qu.name, qu.dead_queue);
		END IF;
		FOR p IN 0 .. qu.partitions - 1 LOOP
			FOREACH t IN ARRAY ARRAY['items', 'leases', 'scheduled'] LOOP
				INSERT INTO fz_expected VALUES (format('q%s_p%s_%s', qu.id, p, t));
				IF to_regclass(format('querator_data.q%s_p%s_%s', qu.id, p, t)) IS NULL THEN
					RETURN NEXT format('queue %L partition %s has no %s table', qu.name, p, t);
					CONTINUE;
				END IF;
				IF t = 'leases' THEN
					EXECUTE format('INSERT INTO fz_leases SELECT %s, %s, id, lease_deadline
					                  FROM querator_data.q%s_p%s_leases', qu.id, p, qu.id, p);
				ELSE
					EXECUTE format('INSERT INTO fz_rows SELECT %s, %L, %s, id, origin_id, source_queue, %s
					                  FROM querator_data.q%s_p%s_%s', qu.id, t, p,
					               CASE t WHEN 'scheduled' THEN 'enqueue_at' ELSE 'NULL::timestamptz' END, qu.id, p, t);
				END IF;
			END LOOP;
		END LOOP;
	END LOOP;
	RETURN QUERY
		SELECT format('table querator_data.%s belongs to no queue or partition of the catalog', c.relname)
		  FROM pg_class c
		 WHERE c.relnamespace = 'querator_data'::regnamespace AND c.relkind IN ('r', 'S')
		   AND c.relname NOT IN (SELECT relname FROM fz_expected)
		   -- a segment of a partition's items or leases (0.6.0) belongs where its parent does
		   AND regexp_replace(c.relname, '_(items|leases)_s[0-9]+$', '_\1') NOT IN (SELECT relname FROM fz_expected)
		   AND NOT EXISTS (SELECT FROM pg_depend d  -- the extension's own: the queue table templates
		                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e');
	RETURN QUERY
		SELECT format('queue %s: id %s is stored %s times (%s)', q, id, count(*), string_agg(place, ', '))
		  FROM fz_rows GROUP BY q, id HAVING count(*) > 1;
	RETURN QUERY
		SELECT format('queue %s: item %s is stored %s times (ids %s)', q, coalesce(origin, id), count(*),
		              string_agg(id::text, ', '))
		  FROM fz_rows WHERE source_queue IS NULL GROUP BY q, coalesce(origin, id) HAVING count(*) > 1;
	RETURN QUERY
		SELECT format('queue %s: id %s is in the %s table of partition %s', q, id, place, part)
		  FROM fz_rows WHERE place <> 'dead' AND id >> 48 <> part;
	RETURN QUERY
		SELECT format('queue %s: lease of id %s in partition %s without its item', l.q, l.id, l.part)
		  FROM fz_leases l
		 WHERE NOT EXISTS (SELECT 1 FROM fz_rows r WHERE r.q = l.q AND r.part = l.part AND r.id = l.id AND r.place = 'items');
	RETURN QUERY
		SELECT format('queue %s: id %s is leased until %s (never expires)', q, id, deadline)
		  FROM fz_leases WHERE NOT isfinite(deadline);
	RETURN QUERY
		SELECT format('queue %s: id %s is scheduled for %s (never delivered)', q, id, due)
		  FROM fz_rows WHERE place = 'scheduled' AND NOT isfinite(due);
END
$$;
SQL

# --- sessions ------------------------------------------------------------------
my %role_of = (admin => 'postgres', app => 'fuzz_app');
my %session;

sub open_session
{
	my ($name) = @_;
	my $s = $node->background_psql($db, on_error_stop => 0, timeout => 60,
		extra_params => [ '-U', $role_of{$name} ]);
	$s->{name} = $name;
	$s->{n} = 0;
	# Verbose errors carry the SQLSTATE; CONTEXT lines are printed too.
	$s->{stdin} .= "\\set VERBOSITY verbose\nSET statement_timeout = $statement_timeout_ms;\n";
	$session{$name} = $s;
	return $s;
}

# Runs $sql in session $s; returns (stdout, stderr), or undef if the session died.
sub run_in
{
	my ($s, $sql) = @_;
	my $banner = "fuzz_done_" . ++$s->{n};
	$s->{stdout} = '';
	$s->{stderr} = '';
	$s->{stdin} .= "$sql;\n\\echo '$banner'\n\\warn '$banner'\n";
	$s->{timeout}->start(60);
	my $alive = eval {
		$s->{run}->pump until ($s->{stdout} =~ /$banner\n/ && $s->{stderr} =~ /$banner\n/);
		1;
	};
	return undef unless $alive;
	my ($out, $err) = ($s->{stdout}, $s->{stderr});
	$out =~ s/$banner\n//;
	$err =~ s/$banner\n//;
	return ($out, $err);
}

open_session($_) for qw(admin app);

# --- the pools of values ---------------------------------------------------------
sub lit { my ($v) = @_; $v =~ s/'/''/g; return "'$v'"; }
sub pick { return $_[ int(rand(@_)) ]; }

my @queues = ('fz_a', 'fz_b', 'fz_c', 'fz_dead', 'fz_é名');    # refreshed from the catalog
my @ids = ();                                                   # refreshed from storage
my @leased = ();                                                # [queue name, id] of leased items

my @queue_name_edges = (
	'NULL::text', "''", "' '", "'a b'", "'~'", "'x~y'", "repeat('q', 512)", "repeat('q', 513)",
	"repeat('é', 512)", "repeat('é', 513)", "'no_such_queue'", "'FZ_A'", "'fz_a '", "chr(1) || 'q'",
	"'fz_a' || chr(10)", "'fz_new'", "'fz_new_é'", "'fz_q''uote'", "'fz_' || repeat('n', 200)",
	"'fz_;drop table x;--'", "'fz_🙂'");
sub queue_name_value
{
	return rand() < 0.6 ? lit(pick(@queues)) : pick(@queue_name_edges);
}

my @text_values = (
	'NULL::text', "''", "' '", "'a'", "'kind-1'", "'text/plain'", "'application/json'",
	"'application/problem+json'", "'text/xml'", "repeat('x', 1024)", "repeat('x', 1025)",
	"repeat('é', 300)", "repeat('é', 1024)", "repeat('é', 1025)", "'tab' || chr(9) || 'x'",
	"'nl' || chr(10) || 'x'", "chr(1)", "chr(127)", "'日本語'", "'🙂'", "'a'';drop table x;--'",
	"'%s%n'", "'NULL'", "repeat('z', 100000)", "'back\\slash'", "'fz_a'");
my @role_values = ("'fuzz_app'", "'postgres'", "'pg_monitor'", "'no_such_role'", "''", 'NULL::text',
	"'PUBLIC'", "repeat('r', 100)", "'fuzz_app; drop'");
my @privilege_values = ("'produce'", "'consume'", "'admin'", "''", "'ADMIN'", "'all'", 'NULL::text',
	"'produce,consume'");
# Only addresses that cannot answer: a refused loopback port and reserved names.
my @url_values = ('NULL::text', "''", "'http://127.0.0.1:1/hook'", "'https://hook.invalid/x'",
	"'ftp://hook.invalid/'", "'http://user:pw\@127.0.0.1:1/'", "'not a url'", "'http://[::1]:1/'",
	"'http://hook.invalid/' || repeat('p', 5000)", "'http://hook.invalid/' || chr(10)");
my @headers_values = ('NULL::jsonb', "'{}'::jsonb", "'{\"Host\": \"evil\"}'::jsonb",
	"'{\"X-A\": \"a\\r\\nb\"}'::jsonb", "'[]'::jsonb", "'\"str\"'::jsonb", "'{\"a\": 1}'::jsonb",
	"'{\"Content-Length\": \"5\"}'::jsonb", "'{\"Authorization\": \"Bearer x\"}'::jsonb",
	"'{\"X-Querator-Id\": \"1\"}'::jsonb", "'{\"\": \"x\"}'::jsonb");
my @interval_values = ('NULL::interval', "'0'::interval", "'-0.000001 s'::interval",
	"'1 microsecond'::interval", "'1 second'::interval", "'-1 second'::interval",
	"'30 seconds'::interval", "'1 hour'::interval", "'12 hours'::interval", "'15 minutes'::interval",
	"'15 minutes 0.000001 s'::interval", "'14 days'::interval", "'1000000 years'::interval",
	"'178000000 years'::interval", "'-178000000 years'::interval", "'2147483647 days'::interval",
	"'-2147483648 days'::interval", "'2147483647 months'::interval", "'1 day -24 hours'::interval",
	"'1 mon'::interval", "'-1 mon 1 day'::interval");
my @timestamp_values = ('NULL::timestamptz', "'infinity'::timestamptz", "'-infinity'::timestamptz",
	'now()', "now() + interval '50 ms'", "now() + interval '1 second'", "now() + interval '1 hour'",
	"now() - interval '1 day'",
	"'epoch'::timestamptz", "'4714-11-24 00:00:00+00 BC'::timestamptz",
	"'294276-12-31 23:59:59.999999+00'::timestamptz", "'2000-01-01'::timestamptz",
	"clock_timestamp() + interval '2 s'");
my @int_values = ('NULL::int', 0, 1, -1, 2, 3, 10, 100, 255, 256, 257, 1000, 1001, 10000, 10001,
	65536, 65537, 2147483647, '(-2147483648)');
my @bool_values = ('NULL::boolean', 'true', 'false');
my @id_edges = ('NULL::bigint', 0, '(-1)', 1, 281474976710655, 281474976710656, 281474976710657,
	'(255::bigint << 48 | 1)', '(256::bigint << 48)', 9223372036854775807, '(-9223372036854775808)');
my @bytea_values = ('NULL::bytea', "'\\x'::bytea", "'\\x00'::bytea", "'\\xff00fe'::bytea",
	"convert_to('{\"a\": 1}', 'UTF8')", "decode(repeat('ab', 100000), 'hex')",
	"decode(repeat('00', 1048576), 'hex')", "decode(repeat('00', 1048577), 'hex')");
my @jsonb_values = ('NULL::jsonb', "'{}'::jsonb", "'[]'::jsonb", "'null'::jsonb", "'0'::jsonb",
	"'\"é\"'::jsonb", "'{\"a\": [1, 2, {\"b\": null}]}'::jsonb", "'\"\\u0001\"'::jsonb",
	"(SELECT jsonb_agg(g) FROM generate_series(1, 1000) g)", "to_jsonb(repeat('x', 1048577))");
# json keeps its text: duplicate keys, spacing and escapes as written.
my @json_values = ('NULL::json', "'{}'::json", "'[]'::json", "'null'::json", "' 0 '::json",
	"'\"é\"'::json", "'{\"b\": 1,  \"a\": [1, 2.50], \"b\": 2}'::json", "'\"\\u0000\"'::json",
	"(SELECT json_agg(g) FROM generate_series(1, 1000) g)", "to_json(repeat('x', 1048577))");

sub id_value
{
	return @ids && rand() < 0.7 ? pick(@ids) : pick(@id_edges);
}

# An array of $elem values: NULL, empty, NULL elements, 2-D, non-1 lower bound, over the batch limit.
sub array_value
{
	my ($type, $elem, $small) = @_;    # $small: a short element for the long arrays
	my $r = rand();
	return "NULL::${type}[]" if $r < 0.08;
	return "'{}'::${type}[]" if $r < 0.14;
	return "ARRAY[NULL]::${type}[]" if $r < 0.18;
	return 'ARRAY[[' . $elem->() . ', ' . $elem->() . '], [' . $elem->() . ', ' . $elem->() . "]]::${type}[]"
	  if $r < 0.26;
	return "'[0:1]={1,2}'::${type}[]" if $r < 0.30 && $type eq 'bigint';
	return "array_fill($small, ARRAY[1001])" if $r < 0.33;
	return "array_fill($small, ARRAY[1000])" if $r < 0.35;
	my @e = map { $elem->() } 1 .. 1 + int(rand(4));
	push @e, $e[0] if rand() < 0.1;    # a duplicate
	return 'ARRAY[' . join(', ', @e) . "]::${type}[]";
}

# The value of one argument, by its name first and its type otherwise.
sub value_for
{
	my ($name, $type) = @_;
	return queue_name_value() if $name =~ /^(queue_name|dead_queue|pivot)$/ && $type eq 'text';
	return pick(@role_values) if $name eq 'role_name';
	return pick(@privilege_values) if $name eq 'privilege';
	return pick(@url_values) if $name eq 'webhook_url';
	return pick(@headers_values) if $name eq 'webhook_headers';
	return pick(@text_values) if $type eq 'text';
	return pick(@interval_values) if $type eq 'interval';
	return pick(@timestamp_values) if $type eq 'timestamp with time zone';
	return pick(@int_values) if $type eq 'integer';
	return pick(@bool_values) if $type eq 'boolean';
	return id_value() if $type eq 'bigint';
	return pick(@bytea_values) if $type eq 'bytea';
	return pick(@jsonb_values) if $type eq 'jsonb';
	return pick(@json_values) if $type eq 'json';
	return array_value('bigint', \&id_value, '1::bigint') if $type eq 'bigint[]';
	return array_value('text', sub { pick(@text_values) }, "'x'::text") if $type eq 'text[]';
	return array_value('bytea', sub { pick(@bytea_values[0 .. 5]) }, "'\\x00'::bytea") if $type eq 'bytea[]';
	return array_value('jsonb', sub { pick(@jsonb_values[0 .. 7]) }, "'{}'::jsonb") if $type eq 'jsonb[]';
	return array_value('json', sub { pick(@json_values[0 .. 7]) }, "'{}'::json") if $type eq 'json[]';
	die "no pool for argument $name of type $type";
}

# --- the functions: every overload in schema querator, but trigger functions ----
# (queues_changed: PostgreSQL refuses any call of it but as a trigger) -------------
my @functions;
for my $row (split /\n/, sql(<<'SQL'))
SELECT p.proname, p.pronargs - p.pronargdefaults,
       array_to_string(ARRAY(SELECT coalesce(p.proargnames[i], '') || ':' || format_type(p.proargtypes[i - 1], NULL)
                               FROM generate_series(1, p.pronargs) i ORDER BY i), ',')
  FROM pg_proc p WHERE p.pronamespace = 'querator'::regnamespace AND p.prorettype <> 'trigger'::regtype
 ORDER BY 1, 3
SQL
{
	my ($fname, $required, $args) = split /\|/, $row, -1;
	push @functions, { name => $fname, required => $required, args => [ map { [ split /:/, $_, 2 ] } split /,/, $args ] };
}
# Leases feed complete / retry / extend: call them more often than the rest.
push @functions, (grep { $_->{name} eq 'queue_lease' } @functions) x 3;
ok(@functions >= 30, scalar(@functions) . ' functions (all overloads, leases weighted) to call');

# One call: required arguments by position, optional ones omitted, by position, or by name.
sub random_call
{
	my ($f) = @_;
	my @args = @{ $f->{args} };
	my @parts;
	for my $i (0 .. $f->{required} - 1) { push @parts, value_for(@{ $args[$i] }); }
	# Often the ids of items leased in that very queue, so that the calls get past the checks.
	if (@leased && $f->{required} >= 2 && $args[1][0] =~ /^ids?$/ && rand() < 0.5)
	{
		my $pair = pick(@leased);
		my @same = grep { $_->[0] eq $pair->[0] } @leased;
		$parts[0] = lit($pair->[0]);
		$parts[1] = $args[1][0] eq 'id' ? $pair->[1]
		  : 'ARRAY[' . join(', ', map { $_->[1] } @same[0 .. int(rand(@same))]) . ']::bigint[]';
	}
	my $mode = rand();
	my $waits = 0;
	for my $i ($f->{required} .. $#args)
	{
		my ($name, $type) = @{ $args[$i] };
		if ($mode < 0.3) { last; }
		elsif ($mode < 0.6) { last if rand() < 0.3; push @parts, value_for($name, $type); }
		else { next if rand() < 0.5; push @parts, qq{"$name" => } . value_for($name, $type); }
		$waits = 1 if $name eq 'wait' && $parts[-1] !~ /NULL|'0'|'-|'1 day -24/;
	}
	return ("SELECT count(*) FROM querator.$f->{name}(" . join(', ', @parts) . ')', $waits);
}

# --- the run ----------------------------------------------------------------------
my (%by_state, %by_function, %failures, @failure_order);
my ($calls, $crashes, $timed_out_waits) = (0, 0, 0);

sub failure
{
	my ($key, $text) = @_;
	$failures{$key}{count}++;
	return if $failures{$key}{count} > 1;
	$failures{$key}{text} = $text;
	push @failure_order, $key;
}

sub refresh_pools
{
	my ($out) = run_in($session{admin},
		"SELECT 'ids:' || coalesce(string_agg(i::text, ','), '') FROM fuzz_ids(40) i;"
		  . " SELECT 'queues:' || coalesce(string_agg(encode(convert_to(name, 'UTF8'), 'hex'), ','), '') FROM querator.queues;"
		  . " SELECT 'leased:' || coalesce(string_agg(l, ','), '') FROM fuzz_leased(20) l");
	return unless defined $out;
	my ($id_line) = $out =~ /^ids:(.*)$/m;
	my ($queue_line) = $out =~ /^queues:(.*)$/m;
	@ids = split /,/, ($id_line // '');
	my @names = map { pack('H*', $_) } split /,/, ($queue_line // '');
	@queues = @names if @names;
	my ($leased_line) = $out =~ /^leased:(.*)$/m;
	@leased = map { my ($h, $id) = split /:/; [ pack('H*', $h), $id ] } split /,/, ($leased_line // '');
}

sub check_invariants
{
	my ($when) = @_;
	my ($out, $err) = run_in($session{admin},
		"BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT * FROM fuzz_invariants(); COMMIT");
	return failure("invariants: session lost", "the invariant check lost its session ($when)") unless defined $out;
	failure("invariants: error $err", "the invariant check failed ($when): $err") if $err =~ /ERROR/;
	failure("invariant: $_", "invariant violated ($when): $_") for grep { $_ ne '' && $_ ne 'BEGIN' && $_ ne 'COMMIT' } split /\n/, $out;
}

my $start = time;
my $next_check = $start + 20;
while (time - $start < $seconds)
{
	refresh_pools() if $calls % 50 == 0;
	my $f = pick(@functions);
	my $who = rand() < 0.75 ? 'admin' : 'app';
	my ($call, $waits) = random_call($f);
	$calls++;
	my ($out, $err) = run_in($session{$who},
		$waits ? "SET statement_timeout = $wait_timeout_ms; $call; SET statement_timeout = $statement_timeout_ms" : $call);
	if (!defined $out || $err =~ /server closed the connection|connection to server was lost|FATAL|PANIC/)
	{
		$crashes++;
		failure("crash: $f->{name}", "the session ($who) was lost by: $call\n" . ($err // $session{$who}{stderr} // ''));
		wait_for_server($node, 60);
		eval { $session{$_}{run}->kill_kill } for keys %session;
		open_session($_) for qw(admin app);
		next;
	}
	my ($state, $message) = $err =~ /^(?:psql:[^\n]*?)?ERROR:  ([0-9A-Z]{5}): ([^\n]*)/m;
	$state //= 'ok';
	$by_state{$state}++;
	$by_function{ $f->{name} }{$state}++;
	(my $shape = $message // '') =~ s/\d+/N/g;
	if ($err =~ /querator_data|SQL statement "/)
	{
		failure("internal SQL: $f->{name} $state $shape",
			"$state: the answer shows querator's internal SQL or tables ($who): $call\n$err");
	}
	elsif ($state eq '57014' && $waits)
	{
		$timed_out_waits++;    # a valid wait ran into its short statement_timeout
	}
	elsif ($state ne 'ok' && !$documented{$state})
	{
		failure("$f->{name} $state $shape", "$state (undocumented) from $f->{name} ($who): $call\n$err");
	}
	elsif ($state eq 'ok' && $call =~ /ARRAY\[\[/)
	{
		# Issue 11: only 1-D arrays are accepted (payloads, ids, kinds, references).
		failure("2-D: $f->{name}", "a multi-dimensional array was accepted by $f->{name} ($who): $call");
	}
	if (time >= $next_check)
	{
		check_invariants("after $calls calls");
		$next_check = time + 20;
	}
}
note(sprintf('%d calls in %.0f s: %s; %d waits ran into the statement timeout', $calls, time - $start,
	join(', ', map { "$_ $by_state{$_}" } sort keys %by_state), $timed_out_waits));
for my $name (sort keys %by_function)
{
	my $c = $by_function{$name};
	note("  $name: " . join(', ', map { "$_ $c->{$_}" } sort keys %$c));
}

# Let the worker settle what the calls left (expired leases, due items), then check again.
sleep 3;
check_invariants('at the end');
ok(defined run_in($session{$_}, 'SELECT 1'), "session $_ is still connected") for sort keys %session;

for my $key (@failure_order)
{
	diag("FAILURE ($failures{$key}{count}x): $failures{$key}{text}");
}
is(scalar(@failure_order), 0, "every call of $calls succeeded or failed with a documented SQLSTATE; the invariants hold (seed $seed)");
is($crashes, 0, 'no session was lost');
ok($calls > 100, "the run made $calls calls");

$_->quit for values %session;
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|PANIC|TRAP:/, 'the postmaster log shows no crash');

done_testing();
