# Long-poll lease (issue 4): what wakes a waiting queue_lease, and what does not.
# A waiter on an empty queue is woken by a produce committed elsewhere; three
# waiters share a burst of 23 items as 16/6/1 in arrival order; a rolled-back
# produce wakes nobody and an uncommitted one waits for its commit; the worker's
# lease expiry and a scheduled item coming due wake waiters too.
# Time bounds are generous (seconds) and set against the time of the wrong
# behaviour: the end of a 30 s wait, or the waiter's recheck (60 s here).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use QueratorTap;
use QueratorWait;

my $node = querator_node('wait_wakeups', "querator.wait_recheck_interval = 60\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

# Background sessions and wait checks: test/perl/QueratorWait.pm.
QueratorWait::init($node, $db);

$node->safe_psql($db, 'CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the querator worker runs');

my @s = map { session() } 1 .. 3;
my $producer = session();

# --- 1. a produce committed in another session wakes a waiter at once -------
sql("SELECT querator.queues_create('plain')");
send_query($s[0], lease_sql('plain', 'c1', 1, '30 s'));
ok(is_waiting($s[0]), 'a waiter on an empty queue sleeps in the Extension wait event');
usleep(200_000);
ok(!query_done($s[0]), 'and has not returned');
my $t0 = time;
sql("SELECT querator.queue_produce('plain', 'hello'::text)");
my ($out, $err, undef, $seen) = collect($s[0], 30);
is($out, '1:hello', 'the waiter returns the produced item');
is($err, '', 'without error');
cmp_ok($seen - $t0, '<', 10, 'within seconds of the produce, not at the end of the 30 s wait');
note(sprintf('woken %.3f s after the producer psql started', $seen - $t0));

# --- 2. dealing: waiters of 20, 6 and 1 share 23 items as 16, 6 and 1 --------
# Several rounds: the woken waiters lease concurrently, so a race between their
# leases shows up in some rounds only.
my @asks = ([ 'w20', 20 ], [ 'w6', 6 ], [ 'w1', 1 ]);
for my $round (1 .. 5)
{
	my $q = "deal$round";
	sql("SELECT querator.queues_create('$q')");
	my $all_waiting = 1;
	for my $i (0 .. 2)
	{
		# One by one, each confirmed asleep before the next arrives: arrival order is fixed.
		send_query($s[$i], lease_sql($q, $asks[$i][0], $asks[$i][1], '30 s'));
		$all_waiting &&= is_waiting($s[$i]);
	}
	ok($all_waiting, "round $round: waiters w20, w6, w1 arrived in that order and wait");
	sql("SELECT querator.queue_produce('$q', ARRAY(SELECT 'i' || g FROM generate_series(1, 23) g))");
	my (@got, @errs);
	for my $i (0 .. 2)
	{
		my ($o, $e) = collect($s[$i], 30);
		push @got, defined $o ? (split /:/, $o)[0] : 'timeout';
		push @errs, $e // 'timeout';
	}
	is(join('', @errs), '', "round $round: the waiters return without error");
	is(join('/', @got), '16/6/1', "round $round: a burst of 23 items is dealt 16/6/1 to waiters of 20/6/1");
	is(sql("SELECT count(*) FILTER (WHERE leased) || '/' || count(*) FROM querator.storage_items_list('$q')"),
		'23/23', "round $round: every item is leased once, none is left over");
}

# --- 3a. a rolled-back produce wakes nobody ----------------------------------
sql("SELECT querator.queues_create('rollback')");
send_query($s[0],
	"SELECT count(*) || '|' || round(extract(epoch FROM clock_timestamp() - statement_timestamp())::numeric, 1)"
	  . " FROM querator.queue_lease('rollback', 'rb', 1, '3 s')");
ok(is_waiting($s[0]), 'waiter with wait 3 s is waiting');
sql("BEGIN; SELECT querator.queue_produce('rollback', 'never'::text); ROLLBACK;");
usleep(500_000);
ok(!query_done($s[0]), 'a rolled-back produce does not end the wait');
ok(is_waiting($s[0], 1), 'the waiter is still asleep after the rollback');
($out, $err) = collect($s[0], 15);
my ($rows, $took) = split /\|/, ($out // '');
is($rows, '0', 'it returns no rows when wait passes');
cmp_ok($took // 0, '>=', 2.9, 'after the whole wait');
cmp_ok($took // 99, '<', 8, 'and not much later');
note("rolled-back case: returned empty after $took s");

# --- 3b. a produce in an open transaction wakes the waiter only at commit ----
send_query($s[0], lease_sql('rollback', 'ot', 1, '30 s'));
ok(is_waiting($s[0]), 'waiter with wait 30 s is waiting');
$producer->query_safe('BEGIN');
$producer->query_safe("SELECT querator.queue_produce('rollback', 'later'::text)");
usleep(1_000_000);
ok(!query_done($s[0]), 'a produce not yet committed does not wake the waiter');
ok(is_waiting($s[0], 1), 'it is still asleep');
$producer->query_safe('COMMIT');
my $committed = time;
($out, $err, undef, $seen) = collect($s[0], 30);
is($out, '1:later', 'after COMMIT the waiter gets the item');
cmp_ok($seen - $committed, '<', 10, 'within seconds of the commit, not at the end of the 30 s wait');
note(sprintf('woken %.3f s after COMMIT returned', $seen - $committed));

# --- 4. a lease expiry by the worker wakes a waiter --------------------------
sql("SELECT querator.queues_create('expiry', lease_timeout => '1 s')");
sql("SELECT querator.queue_produce('expiry', 'e'::text)");
my $deadline = sql("SELECT lease_deadline FROM querator.queue_lease('expiry', 'holder')");
send_query($s[1],
	"SELECT attempts || '|' || convert_from(payload, 'UTF8') || '|'"
	  . " || round(extract(epoch FROM clock_timestamp() - '$deadline'::timestamptz)::numeric, 3)"
	  . " FROM querator.queue_lease('expiry', 'taker', 1, '30 s')");
ok(is_waiting($s[1]), 'a waiter waits while the only item is leased by another client');
($out, $err) = collect($s[1], 30);
my ($attempts, $payload, $late) = split /\|/, ($out // '');
is($attempts, '2', 'after the lease expired the waiter gets the item with attempts 2');
is($payload, 'e', 'the same item');
cmp_ok($late // -1, '>=', 0, 'not before the lease deadline');
cmp_ok($late // 99, '<', 10, 'and within 10 s of it: the worker woke for the deadline (not its 60 s idle round)');
note("lease expiry: waiter got the item $late s after the lease deadline");

# --- 5. a scheduled item coming due wakes a waiter ---------------------------
sql("SELECT querator.queues_create('sched')");
send_query($s[2],
	"SELECT convert_from(payload, 'UTF8') || '|' || clock_timestamp()"
	  . " FROM querator.queue_lease('sched', 'sw', 1, '30 s')");
ok(is_waiting($s[2]), 'a waiter waits on a queue with nothing ready');
my $enqueue_at = sql("SELECT clock_timestamp() + interval '1 s'");
sql("SELECT querator.queue_produce('sched', 's'::text, enqueue_at => '$enqueue_at')");
usleep(300_000);
ok(!query_done($s[2]), 'a scheduled item does not wake the waiter before it is due');
($out, $err) = collect($s[2], 30);
my ($spayload, $got_at) = split /\|/, ($out // '');
is($spayload, 's', 'the waiter gets the scheduled item once due');
my $sched_late = sql("SELECT round(extract(epoch FROM '$got_at'::timestamptz - '$enqueue_at'::timestamptz)::numeric, 3)");
cmp_ok($sched_late, '>=', 0, 'not before enqueue_at');
cmp_ok($sched_late, '<', 10, 'and within 10 s of it: the worker woke for enqueue_at (not its 60 s idle round)');
note("scheduled: waiter got the item $sched_late s after enqueue_at");

$_->quit for (@s, $producer);
$node->stop;
done_testing();
