# The runbook runs as pasted (issue 18). Every ```sql block of docs/operations.md, and every
# inline statement of its prose that ends in ';', runs in document order against a cluster
# holding queues in the states the runbook describes: stuck leases of a consumer that died
# ('worker-7'), dead letters of 'emails' and items of its dead queue 'emails_dead', a webhook
# queue that failed then succeeded, consumers waiting in a long poll (and a busy lease call,
# and a waiting consumer of another database, that must not be listed as waiting), a
# queues_delete blocked by a session idle in transaction, and the two broken installs of
# "CREATE EXTENSION ... refused". The queries of docs/postgres_exporter_queries.yaml run too.
#
# Substitutions, all of them mechanical:
# - `\watch N` runs once (`\g`);
# - an inline statement runs inside BEGIN ... ROLLBACK (they are examples in the prose, and
#   some remove what later sections use), except ALTER SYSTEM, which cannot run in a
#   transaction and is undone after; one that contains '...' is a fragment and is skipped.
# An inline call with named arguments that lacks its SELECT (`queues_update('q', x => 1)`)
# cannot run as pasted: that fails the test.
#
# Blocks run with ON_ERROR_STOP: any error fails. Some blocks have a check on what they print
# or change (%hooks below); a hook whose block is gone fails, so a check cannot silently lapse.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;
use QueratorWait;
use WebhookSink;

my $src = $ENV{QUERATOR_SRC} // '.';
my $node = querator_node('runbook', sink_conf());
my $db = 'postgres';
sub sql { my ($sql, $in) = @_; return $node->safe_psql($in // $db, $sql); }

# ------------------------------------------------------------------ the runbook, parsed
# Steps in document order: { kind => 'block' | 'inline', line, section, sql }.
sub runbook_steps
{
	my ($text) = @_;
	my @lines = split /\n/, $text;
	my (@steps, @prose, @fence);
	my ($section, $fence_lang, $fence_line, $prose_line) = ('', undef, 0, 1);
	my $flush_prose = sub {
		my $para = join("\n", @prose);
		while ($para =~ /`([^`]+)`/g)
		{
			(my $span = $1) =~ s/\s*\n\s*/ /g;
			push @steps, { kind => 'inline', line => $prose_line, section => $section, sql => $span };
		}
		@prose = ();
	};
	for my $i (0 .. $#lines)
	{
		my $l = $lines[$i];
		if (!defined $fence_lang && $l =~ /^(\s*)```(\w*)\s*$/)
		{
			$flush_prose->();
			($fence_lang, $fence_line, @fence) = ($2, $i + 1);
			next;
		}
		if (defined $fence_lang && $l =~ /^\s*```\s*$/)
		{
			if ($fence_lang eq 'sql')
			{
				# A block inside a list item is indented: remove the common indentation.
				my ($indent) = sort { length $a <=> length $b } map { /^(\s*)\S/ ? $1 : () } @fence;
				$indent //= '';
				push @steps, { kind => 'block', line => $fence_line, section => $section,
					sql => join("\n", map { s/^\Q$indent\E//r } @fence) . "\n" };
			}
			undef $fence_lang;
			$prose_line = $i + 2;
			next;
		}
		if (defined $fence_lang) { push @fence, $l; next; }
		$section = $1 if $l =~ /^#+\s+(.*)/;
		push @prose, $l;
	}
	$flush_prose->();
	return @steps;
}

my @steps = runbook_steps(slurp_file("$src/docs/operations.md"));
my @blocks = grep { $_->{kind} eq 'block' } @steps;
cmp_ok(scalar @blocks, '>=', 20, 'the runbook has its SQL blocks (' . scalar(@blocks) . ')');

# Inline spans: statements (a command word, ending in ';'), fragments, and calls that
# look runnable but are not (a named-argument call without SELECT).
my @inline;
for my $s (grep { $_->{kind} eq 'inline' } @steps)
{
	my $t = $s->{sql};
	next if $t =~ /\.\.\./;
	if ($t =~ /^(SELECT|ALTER|GRANT|REVOKE|CREATE|DROP|VACUUM|SHOW)\b.*;\s*$/s)
	{
		push @inline, $s;
		next;
	}
	ok(0, "line $s->{line}: `$t` is a call that cannot run as pasted (write SELECT querator....;)")
	  if $t =~ /^[a-z_][\w.]*\(.*=>.*\)$/;
}
@steps = grep { my $x = $_; $x->{kind} eq 'block' || grep { $_ == $x } @inline } @steps;
cmp_ok(scalar @inline, '>=', 10, 'the runbook has inline statements (' . scalar(@inline) . ')');

# ------------------------------------------------------------------ the states it describes
my $sink = start_sink();
sql(q{CREATE ROLE app_admin; CREATE ROLE app_producer; CREATE ROLE app_worker; CREATE ROLE postgres_exporter LOGIN;
      CREATE ROLE mallory;});
sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 20), 'the worker runs');
my $hook_url = sink_url($sink, '/fail-first/1');
sql(qq{
	SELECT querator.queues_create('emails_dead');  -- first: internal id 1, which the old VACUUM line hit
	SELECT querator.queues_create('emails', lease_timeout => '1 hour', max_attempts => 5);
	SELECT querator.queues_create('sms');          -- consumers wait on it
	SELECT querator.queues_create('emails_hook', webhook_url => '$hook_url', webhook_backoff => '100 ms',
	                              webhook_backoff_max => '200 ms');
	SELECT querator.queue_produce('emails', array_agg(format('{"to": "user%s\@example.com"}', g)::jsonb))
	  FROM generate_series(1, 30) g;
	-- dead letters of emails itself: a consumer gave up on two
	SELECT querator.queue_retry('emails', ARRAY(SELECT id FROM querator.queue_lease('emails', 'worker-1', 2)), dead => true);
	-- from then on they go to emails_dead
	SELECT querator.queues_update('emails', dead_queue => 'emails_dead');
	SELECT querator.queue_retry('emails', ARRAY(SELECT id FROM querator.queue_lease('emails', 'worker-1', 2)), dead => true);
	SELECT querator.queue_produce('emails', '{"later": true}'::jsonb, enqueue_at => now() + interval '1 day');
	-- worker-7 leased three and died
	SELECT count(*) FROM querator.queue_lease('emails', 'worker-7', 3);
	SELECT querator.queue_produce('emails_hook', '{"hook": 1}'::jsonb);
});
ok(queue_drained($node, $db, 'emails_hook', 30), 'the webhook item was delivered on its second attempt');
is(sql(q{SELECT count(*) FROM querator.storage_dead_list('emails')}), '2', 'emails holds two dead letters');
is(sql(q{SELECT count(*) FROM querator.storage_items_list('emails_dead')}), '2', 'emails_dead holds two items');

# Waiting consumers: two here, one in another database; a busy (not waiting) lease call here.
sql('CREATE DATABASE other');
sql(q{CREATE EXTENSION querator; SELECT querator.queues_create('sms');}, 'other');
QueratorWait::init($node, 'other');
my $waiter_elsewhere = session();
send_query($waiter_elsewhere, lease_sql('sms', 'other-1', 1, '5 minutes'));
ok(is_waiting($waiter_elsewhere, 20), 'a consumer waits in the other database');
QueratorWait::init($node, $db);
my @waiters = map { session() } 1 .. 2;
send_query($waiters[$_ - 1], lease_sql('sms', "sms-$_", 1, '5 minutes')) for 1 .. 2;
ok(is_waiting($_, 20), 'a consumer waits') for @waiters;
my $busy = session();
send_query($busy, q{SELECT pg_sleep(300) FROM querator.queue_lease('sms', 'busy', 1)});

# ------------------------------------------------------------------ checks of some blocks
my ($holder, $deleter);
my %hooks = (
	'waiting consumers: only those, of this database' => {
		match => qr/wait_event_type = 'Extension'/,
		check => sub {
			my @pids = sort map { (split /\|/)[0] } grep { length } split /\n/, $_[0];
			is("@pids", join(' ', sort map { $_->{backend_pid} } @waiters), $_[1]);
		},
	},
	'VACUUM names the tables of emails, not of the queue with id 1' => {
		match => qr/VACUUM \(ANALYZE\) %s/,
		check => sub {
			is(sql(q{SELECT string_agg(q || ':' || coalesce(s.vacuumed::text, 'no stats'), ' ' ORDER BY q)
			           FROM (SELECT DISTINCT q FROM unnest(ARRAY['emails', 'emails_dead']) q) qs,
			                LATERAL (SELECT bool_and(s.last_vacuum IS NOT NULL) AS vacuumed
			                           FROM querator.queue_tables(q) t
			                           JOIN pg_stat_user_tables s ON s.relid = t.table_name) s}),
				'emails:true emails_dead:false', $_[1]);
		},
	},
	'the dead consumer\'s leases are retried; again, with none left: 0' => {
		match => qr/queue_retry\('emails',\s+ARRAY\(.*worker-7/s,
		check => sub {
			my ($out, $name, $step) = @_;
			is($out, '3', 'three leases of worker-7 handed back');
			my ($ret, $again, $err) = $node->psql($db, $step->{sql});
			is("$ret|$again", '0|0', $name) or diag($err);
		},
	},
	'redrive: selected, died before, all, the dead queue' => {
		match => qr/reason = 'retry'/,
		check => sub {
			is($_[0], "2\n0\n0\n2", $_[1]);
			is(sql(q{SELECT count(*) FROM querator.storage_items_list('emails_dead')}), '0', 'emails_dead is empty');
		},
	},
	'webhook_status: the success cleared the error of the failed attempt' => {
		match => qr/FROM querator\.webhook_status\(\)/,
		check => sub {
			my ($row) = grep { /^emails_hook\|/ } split /\n/, $_[0];
			like($row // '', qr/^emails_hook\|1\|1\|200\|\|/, $_[1]);
		},
	},
	'who blocks a queues_delete' => {
		match => qr/AS blocking_query/,
		before => sub {
			sql(q{SELECT querator.queues_create('stuck'); SELECT querator.queue_produce('stuck', 'x'::text);});
			$holder = session();
			$holder->query_safe(q{BEGIN; SELECT count(*) FROM querator.queue_lease('stuck', 'h', 1);});
			$deleter = session();
			send_query($deleter, q{SELECT querator.queues_delete('stuck', force => true)});
			ok(defined poll_until($node, $db, qq{SELECT wait_event_type FROM pg_stat_activity
			                                      WHERE pid = $deleter->{backend_pid}}, 'Lock', 20),
				'queues_delete waits for the session idle in transaction');
		},
		check => sub {
			my @blockers = map { (split /\|/)[2] } grep { length } split /\n/, $_[0];
			is("@blockers", $holder->{backend_pid}, $_[1]);
		},
	},
	'ending the blocker lets queues_delete finish' => {
		match => qr/pg_terminate_backend\(b\.pid\)/,
		check => sub {
			my ($out, $err) = collect($deleter, 20);
			is($err // 'still waiting', '', $_[1]);
			is(sql(q{SELECT count(*) FROM querator.queues_list() WHERE queue_name = 'stuck'}), '0', 'stuck is gone');
		},
	},
	'a schema made before CREATE EXTENSION: dropped, installed' => {
		match => qr/DROP SCHEMA querator CASCADE;/,
		db => 'hijacked',
		check => sub {
			is(sql(q{SELECT extname FROM pg_extension WHERE extname = 'querator'}, 'hijacked'), 'querator', $_[1]);
		},
	},
	'a schema given away before ALTER EXTENSION UPDATE: taken back, updated' => {
		match => qr/ALTER SCHEMA querator OWNER TO %s/,
		db => 'given_away',
		before => sub {
			sql(q{CREATE EXTENSION querator VERSION '0.1.0'; ALTER SCHEMA querator OWNER TO mallory;}, 'given_away');
			my ($ret, $out, $err) = $node->psql('given_away', 'ALTER EXTENSION querator UPDATE');
			like($err, qr/schema querator is owned by role mallory/, 'the update is refused first');
		},
		check => sub {
			is(sql(q{SELECT extversion = default_version FROM pg_extension, pg_available_extensions
			          WHERE extname = 'querator' AND name = 'querator'}, 'given_away'), 't', $_[1]);
		},
	},
);
# The look at the schema comes first, in the database where CREATE EXTENSION was refused.
$hooks{'the schema is looked at where it was made'} = {
	match => qr/^SELECT nspowner::regrole/,
	db => 'hijacked',
	before => sub {
		sql('CREATE DATABASE hijacked; CREATE DATABASE given_away;');
		sql('CREATE SCHEMA querator AUTHORIZATION mallory', 'hijacked');
		my ($ret, $out, $err) = $node->psql('hijacked', 'CREATE EXTENSION querator');
		like($err, qr/schema querator is owned by role mallory/, 'CREATE EXTENSION is refused first');
	},
	check => sub { like($_[0], qr/^mallory\|/, $_[1]); },
};

# ------------------------------------------------------------------ run them all
for my $step (@steps)
{
	my $where = "line $step->{line} ($step->{section})";
	my @hits = grep { $step->{sql} =~ $hooks{$_}{match} } sort keys %hooks;
	my $in = $db;
	$hooks{$_}{seen}++ for @hits;
	for my $h (@hits) { $hooks{$h}{before}->() if $hooks{$h}{before}; $in = $hooks{$h}{db} if $hooks{$h}{db}; }
	my $sql = $step->{sql};
	if ($step->{kind} eq 'block')
	{
		$sql =~ s/\\watch\s+\d+/\\g/g;
	}
	elsif ($sql !~ /^ALTER SYSTEM/)
	{
		$sql = "BEGIN;\n$sql\nROLLBACK;";
	}
	my ($ret, $out, $err) = $node->psql($in, $sql, timeout => 120);
	ok($ret == 0 && $err !~ /ERROR/, "$where runs as pasted") or diag("$sql\n$err");
	if ($step->{kind} eq 'inline' && $sql =~ /^ALTER SYSTEM SET ([\w.]+)/)
	{
		sql("ALTER SYSTEM RESET $1");
		sql('SELECT pg_reload_conf()');
	}
	$hooks{$_}{check}->($out, $_, $step) for grep { $hooks{$_}{check} } @hits;
}
is($hooks{$_}{seen} // 0, 1, "the runbook has the block of: $_") for sort keys %hooks;

# ------------------------------------------------------------------ postgres_exporter's queries
my $yaml = slurp_file("$src/docs/postgres_exporter_queries.yaml");
my @queries = $yaml =~ /^  query: \|\n((?:    .*\n|\s*\n)+)/mg;
is(scalar @queries, 2, 'the exporter file has its two queries');
for my $q (@queries)
{
	my ($ret, $out, $err) = $node->psql($db, $q);
	ok($ret == 0 && $out ne '', 'an exporter query runs and returns rows') or diag("$q\n$err");
}

# The sessions still in a call (the waiters, the busy lease) end with their backends.
my @left = grep { !query_done($_) } @waiters, $waiter_elsewhere, $busy;
sql('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN ('
	  . join(', ', map { $_->{backend_pid} } @left) . ')') if @left;
$_->{run}->kill_kill for @left;
stop_sink($sink);
done_testing();
