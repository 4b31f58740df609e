# Long-poll lease (issue 4): measurements, printed with note() and checked only
# for sanity.
#
# Wake latency: one consumer loops over queue_lease(wait => '5 s') and records
# clock_timestamp() as soon as each call returns; a producer, once it sees the
# consumer asleep in its wait, produces one item in autocommit whose payload is
# clock_timestamp() taken just before the produce runs and commits. Latency =
# receipt - payload: an upper bound on commit -> item in hand (it includes the
# produce itself and the commit's WAL flush). The producer's client also notes
# when its COMMIT came back; receipt minus that (a lower bound, often negative)
# is reported too. Server and test run on one machine, one clock.
#
# Idle CPU: 100 consumers wait (wait '60 s') on an empty queue; utime+stime of
# their backends from /proc/<pid>/stat over 10 s. Then 100 items wake them all,
# one item each.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use POSIX ();
use IPC::Run;
use QueratorTap;

my $wakeups = 120;
my $idle_waiters = 100;
my $idle_seconds = 10;

my $node = querator_node('wait_measure', "max_connections = 130\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

$node->safe_psql($db, 'CREATE EXTENSION querator');

# --- wake latency -------------------------------------------------------------
sql("SELECT querator.queues_create('lat', lease_timeout => '10 minutes')");
sql('CREATE TABLE lat_results (produced timestamptz, received timestamptz)');

my $consumer = $node->background_psql($db, on_error_stop => 0);
my $cpid = $consumer->query_safe('SELECT pg_backend_pid()');
# One DO block, one transaction per wake-up (COMMIT in the loop).
$consumer->{stdin} .= <<"EOS";
DO \$\$
DECLARE r record;
BEGIN
  FOR i IN 1..$wakeups LOOP
    SELECT l.payload, clock_timestamp() AS got INTO r
      FROM querator.queue_lease('lat', 'consumer', 1, '5 s') l;
    IF r.payload IS NOT NULL THEN
      INSERT INTO lat_results VALUES (convert_from(r.payload, 'UTF8')::timestamptz, r.got);
    END IF;
    COMMIT;
  END LOOP;
END \$\$;
\\echo 'consumer_done'
EOS
$consumer->{run}->pump_nb;

my $producer = $node->background_psql($db);

# A query on a background session without the per-query note() of BackgroundPsql::query.
my $raw_n = 0;
sub raw_query
{
	my ($s, $sql) = @_;
	my $banner = 'raw_done_' . ++$raw_n;
	$s->{stdout} = '';
	$s->{stdin} .= "$sql;\n\\echo '$banner'\n";
	my $deadline = time + 30;
	$s->{run}->pump until $s->{stdout} =~ /$banner\n/ || time > $deadline;
	die "query timed out: $sql" unless $s->{stdout} =~ s/\n?$banner\n//;
	die "query failed: $s->{stderr}" if $s->{stderr} ne '';
	return $s->{stdout};
}
my @acks;
my $not_waiting = 0;
my $t_start = time;
for my $i (1 .. $wakeups)
{
	# Produce only into a sleeping waiter: each item is a real wake-up.
	my $asleep = 0;
	for (1 .. 2000)
	{
		$consumer->{run}->pump_nb;
		if (raw_query($producer, "SELECT wait_event FROM pg_stat_activity WHERE pid = $cpid") eq 'Extension')
		{
			$asleep = 1;
			last;
		}
		usleep(1_000);
	}
	$not_waiting++ unless $asleep;
	usleep(5_000 + int(rand(10_000)));
	raw_query($producer, "SELECT querator.queue_produce('lat', clock_timestamp()::text)");
	push @acks, time;
}
my $deadline = time + 20;
while ($consumer->{stdout} !~ /consumer_done/ && time < $deadline)
{
	$consumer->{run}->pump_nb;
	usleep(10_000);
}
like($consumer->{stdout}, qr/consumer_done/, 'the consumer loop finished');
is($consumer->{stderr}, '', 'without error');
is($not_waiting, 0, 'the consumer was asleep in its wait before every produce');
note(sprintf('%d wake-ups in %.1f s', $wakeups, time - $t_start));

is(sql('SELECT count(*) FROM lat_results'), $wakeups, "every one of the $wakeups items reached the consumer");
my ($p50, $p90, $p99, $max) = split /\|/, sql(
	"SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 3),
	        round(percentile_cont(0.9) WITHIN GROUP (ORDER BY ms)::numeric, 3),
	        round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 3),
	        round(max(ms)::numeric, 3)
	   FROM (SELECT extract(epoch FROM received - produced) * 1000 AS ms FROM lat_results) s");
note("wake latency (produce statement start -> item in the consumer), ms: p50 $p50, p90 $p90, p99 $p99, max $max");
cmp_ok($p99, '<', 1000, 'p99 wake latency under 1 s (sanity)');

# Lower bound: receipt minus the moment the producer's client saw its COMMIT.
my @received = split /\n/, sql('SELECT extract(epoch FROM received) FROM lat_results ORDER BY produced');
my @since_ack = sort { $a <=> $b } map { ($received[$_] - $acks[$_]) * 1000 } 0 .. $#acks;
note(sprintf('receipt - producer client saw COMMIT, ms: p50 %.3f, p99 %.3f (negative: the waiter had it first)',
	$since_ack[int(@since_ack * 0.5)], $since_ack[int(@since_ack * 0.99)]));
$consumer->quit;
$producer->quit;

# --- idle CPU of 100 waiting consumers ----------------------------------------
sql("SELECT querator.queues_create('idle')");
my @h;
for my $i (1 .. $idle_waiters)
{
	my ($out, $err) = ('', '');
	push @h, {
		out => \$out,
		err => \$err,
		h => IPC::Run::start(
			[ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr($db), '-c',
			  "SELECT count(*) || '|' || extract(epoch FROM clock_timestamp()) FROM querator.queue_lease('idle', 'idle$i', 1, '60 s')" ],
			'>', \$out, '2>', \$err) };
}
my $all_waiting = poll_until($node, $db,
	"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Extension' AND wait_event = 'Extension'"
	  . " AND query LIKE '%queue_lease(''idle''%'",
	$idle_waiters, 30, 100);
ok(defined $all_waiting, "$idle_waiters consumers are waiting");
my @pids = split /\n/, sql(
	"SELECT pid FROM pg_stat_activity WHERE query LIKE '%queue_lease(''idle''%' AND pid <> pg_backend_pid()");
is(scalar @pids, $idle_waiters, 'one backend each');

sub cpu_ticks
{
	my $sum = 0;
	for my $pid (@pids)
	{
		open my $fh, '<', "/proc/$pid/stat" or next;
		my $line = <$fh>;
		close $fh;
		# Fields after the ")" closing the command name: state is field 3, utime 14, stime 15.
		my @f = split / /, substr($line, rindex($line, ')') + 2);
		$sum += $f[11] + $f[12];
	}
	return $sum;
}
my $hz = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
my ($t0, $c0) = (time, cpu_ticks());
sleep $idle_seconds;
my ($t1, $c1) = (time, cpu_ticks());
my $cpu_pct = ($c1 - $c0) / $hz / ($t1 - $t0) * 100;
note(sprintf('idle CPU of %d waiting backends over %.1f s: %d ticks (%d Hz) = %.3f%% of one core in total',
	scalar @pids, $t1 - $t0, $c1 - $c0, $hz, $cpu_pct));
cmp_ok($cpu_pct, '<', 25, 'idle waiters use little CPU (sanity)');

# 100 items in one produce wake all 100 waiters, one item each, at once.
my $t_burst = time;
sql("SELECT querator.queue_produce('idle', ARRAY(SELECT 'i' || g FROM generate_series(1, $idle_waiters) g))");
my $t_committed = time;
$deadline = time + 20;
while (time < $deadline)
{
	last unless grep { $_->{h}->pumpable } @h;
	eval { $_->{h}->pump_nb } for grep { $_->{h}->pumpable } @h;
	usleep(5_000);
}
eval { $_->{h}->finish } for @h;
my @rows = map { [ split /\|/, (${ $_->{out} } =~ s/\s+$//r) ] } @h;
is(join(',', map { $_->[0] // 'none' } @rows), join(',', ('1') x $idle_waiters),
	"a burst of $idle_waiters items gives each of the $idle_waiters waiters one item");
is(join('', map { ${ $_->{err} } } @h), '', 'no waiter failed');
my @delay = sort { $a <=> $b } map { defined $_->[1] ? ($_->[1] - $t_burst) * 1000 : 1e9 } @rows;
my $late = grep { $_ > 1000 } @delay;
note(sprintf('burst of %d items to %d waiters: receipt after the producer psql started, ms: min %.1f, p50 %.1f, '
	  . 'p99 %.1f, max %.1f; %d waiter(s) later than 1 s (producer psql took %.1f ms)',
	$idle_waiters, $idle_waiters, $delay[0], $delay[int(@delay * 0.5)], $delay[int(@delay * 0.99)], $delay[-1],
	$late, ($t_committed - $t_burst) * 1000));
# A woken waiter whose lease loses the race for a row must try again, not sleep until its recheck.
is($late, 0, 'every waiter of the burst has its item within 1 s');

$node->stop;
done_testing();
