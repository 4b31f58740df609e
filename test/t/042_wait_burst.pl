# Long-poll lease: many waiters and one burst. 100 consumers wait on an empty
# queue; they sleep on their latch (the Extension wait event, sampled over a
# second); one produce of 100 items then gives each of them exactly one item.
#
# A woken waiter whose lease loses the race for a row must try again at once,
# not sleep until its recheck: querator.wait_recheck_interval is set far beyond
# the wait here, so a waiter that went back to sleep would return empty.
#
# Behaviour only: wake latency, the burst's receipt latency and the idle CPU of
# the waiters are figures, reported by bench/run (bench/README.md).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use IPC::Run;
use QueratorTap;

my $waiters = 100;

my $node = querator_node('wait_burst', "max_connections = 130\nquerator.wait_recheck_interval = 900\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

$node->safe_psql($db, 'CREATE EXTENSION querator');
sql("SELECT querator.queues_create('burst', lease_timeout => '10 minutes')");

my @h;
for my $i (1 .. $waiters)
{
	my ($out, $err) = ('', '');
	push @h, {
		out => \$out,
		err => \$err,
		h => IPC::Run::start(
			[ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr($db), '-c',
			  "SELECT count(*) FROM querator.queue_lease('burst', 'w$i', 1, '120 s')" ],
			'>', \$out, '2>', \$err) };
}
my $asleep_sql = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Extension'"
  . " AND wait_event = 'Extension' AND query LIKE '%queue_lease(''burst''%'";
ok(defined poll_until($node, $db, $asleep_sql, $waiters, 60, 100), "$waiters consumers are waiting");

# Asleep, not spinning: every sample over a second finds nearly all of them in the
# wait event (each wakes once a second to check its client, so one may be caught awake).
my @samples = map { usleep(100_000); sql($asleep_sql) } 1 .. 10;
is(scalar(grep { $_ < $waiters * 0.9 } @samples), 0, 'they stay asleep on their latch')
  or diag('asleep per sample: ' . join(',', @samples));

sql("SELECT querator.queue_produce('burst', ARRAY(SELECT 'i' || g FROM generate_series(1, $waiters) g))");
# Seconds are plenty for 100 waiters to lease; a waiter that went back to sleep after a
# lost race would still be waiting (its wait and its recheck are minutes away).
my $deadline = time + 30;
while (time < $deadline)
{
	last unless grep { $_->{h}->pumpable } @h;
	eval { $_->{h}->pump_nb } for grep { $_->{h}->pumpable } @h;
	usleep(10_000);
}
my $still_waiting = grep { $_->{h}->pumpable } @h;
is($still_waiting, 0, 'every waiter returned within 30 s: none slept past a lost race');
eval { $_->{h}->kill_kill } for grep { $_->{h}->pumpable } @h;
eval { $_->{h}->finish } for @h;
my @got = map { ${ $_->{out} } =~ s/\s+$//r } @h;
is(join(',', map { $_ eq '' ? 'none' : $_ } @got), join(',', ('1') x $waiters),
	"a burst of $waiters items gives each of the $waiters waiters one item");
is(join('', map { ${ $_->{err} } } @h), '', 'no waiter failed');
is(sql("SELECT count(*) FILTER (WHERE leased) || '/' || count(*) FROM querator.storage_items_list('burst', NULL, 1000)"),
	"$waiters/$waiters", 'every item is leased once');

$node->stop;
done_testing();
