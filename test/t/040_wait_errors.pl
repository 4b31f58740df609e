# Long-poll lease (issue 4): the errors and the ways out of a wait. A client_id
# already waiting on a queue is refused at once (55006) while other queues and
# sequential reuse are fine; pg_cancel_backend, statement_timeout and a client
# disconnect end a wait and free its place; the wait bounds (22023) and the
# REPEATABLE READ / SERIALIZABLE refusal (25000); server shutdown ends waits.
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

my $node = querator_node('wait_errors', "querator.wait_recheck_interval = 60\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

# Runs $sql in a new psql; returns (stdout, stderr with SQLSTATEs, seconds taken).
sub try_sql
{
	my ($sql) = @_;
	my $t0 = time;
	my ($ret, $out, $err) = $node->psql($db, "\\set VERBOSITY verbose\n$sql", timeout => 30);
	return ($out, $err, time - $t0);
}

# Background sessions and wait checks: test/perl/QueratorWait.pm.
QueratorWait::init($node, $db);

my $dup_msg = 'duplicate client id; a client cannot make multiple leased requests to the same queue';

$node->safe_psql($db, 'CREATE EXTENSION querator');
my ($a, $b, $c) = map { session() } 1 .. 3;
my ($out, $err, $took, $seen);

# --- 6. duplicate client_id ---------------------------------------------------
sql("SELECT querator.queues_create('dq'); SELECT querator.queues_create('dq2')");
send_query($a, lease_sql('dq', 'x', 1, '30 s'));
ok(is_waiting($a), "client x waits on dq");
($out, $err, $took) = try_sql("SELECT * FROM querator.queue_lease('dq', 'x', 1, '30 s')");
like($err, qr/ERROR:  55006: \Q$dup_msg\E/, 'a second waiting call of x on dq fails with 55006 and the message');
cmp_ok($took, '<', 10, 'at once (not after the 30 s wait)');
note(sprintf('duplicate refused in %.3f s (incl. psql start-up)', $took));
($out, $err) = try_sql("SELECT count(*) FROM querator.queue_lease('dq', 'x', 1, '0')");
note("x on dq with wait 0 while x waits there: " . ($err =~ /55006/ ? '55006' : "no error, $out rows"));
ok(is_waiting($a, 1), 'the refused call did not disturb the first waiter');
($out, $err, $took) = try_sql(lease_sql('dq2', 'x', 1, '1 s'));
is($err, '', 'x may wait on another queue meanwhile');
is($out, '0:', 'and gets nothing there after its wait');
sql("SELECT querator.queue_produce('dq', 'first'::text)");
($out, $err) = collect($a, 20);
is($out, '1:first', 'the first waiter of x gets the item produced on dq');
($out, $err, $took) = try_sql(lease_sql('dq', 'x', 1, '1 s'));
is($err, '', 'after it returned, x can wait on dq again (another session)');
is($out, '0:', 'and that wait ends empty');
send_query($a, lease_sql('dq', 'x', 1, '30 s'));
ok(is_waiting($a), 'the same session can wait again as x');
sql("SELECT querator.queue_produce('dq', 'second'::text)");
($out, $err) = collect($a, 20);
is($out, '1:second', 'and is woken again');

# --- 7. cancellation -------------------------------------------------------
sql("SELECT querator.queues_create('cq')");
send_query($a, lease_sql('cq', 'c', 1, '30 s'));
ok(is_waiting($a), 'client c waits on cq');
my $t_cancel = time;
is(sql("SELECT pg_cancel_backend($a->{backend_pid})"), 't', 'pg_cancel_backend on the waiter');
($out, $err, undef, $seen) = collect($a, 20);
like($err // '', qr/ERROR:  57014: canceling statement due to user request/, 'the wait ends with 57014');
cmp_ok($seen - $t_cancel, '<', 10, 'promptly (not at the end of the 30 s wait)');
note(sprintf('cancelled wait returned %.3f s after pg_cancel_backend', $seen - $t_cancel));
($out, $err) = try_sql(lease_sql('cq', 'c', 1, '0.5 s'));
is($err, '', 'client c can wait again at once from another session (slot freed)');
send_query($b, lease_sql('cq', 'd', 1, '30 s'));
ok(is_waiting($b), 'a new waiter d on cq');
my $t_produce = time;
sql("SELECT querator.queue_produce('cq', 'after-cancel'::text)");
($out, $err, undef, $seen) = collect($b, 20);
is($out, '1:after-cancel', 'the new waiter gets the next item (the cancelled waiter took no share)');
cmp_ok($seen - $t_produce, '<', 10, 'promptly (not at a recheck)');

$a->query_safe("SET statement_timeout = '500ms'");
send_query($a, lease_sql('cq', 'st', 1, '30 s'));
($out, $err, $took) = collect($a, 20);
like($err // '', qr/ERROR:  57014: canceling statement due to statement timeout/,
	"statement_timeout '500ms' ends a wait of 10 s with 57014");
cmp_ok($took // 99, '<', 10, 'after about 0.5 s (not at the end of the 30 s wait)');
note(sprintf('statement_timeout 500ms: wait ended after %.3f s', $took // -1));
$a->query_safe('RESET statement_timeout');
($out, $err) = try_sql(lease_sql('cq', 'st', 1, '0.5 s'));
is($err, '', 'its client id can wait again');

# A client that goes away: its backend notices and ends, freeing the client id.
send_query($c, lease_sql('cq', 'gone', 1, '60 s'));
ok(is_waiting($c), 'client gone waits on cq');
my $gone_pid = $c->{backend_pid};
$c->{run}->kill_kill;
my $ended = poll_until($node, $db, "SELECT count(*) FROM pg_stat_activity WHERE pid = $gone_pid", '0', 20, 20);
ok(defined $ended, 'the backend of a disconnected waiting client ends');
cmp_ok($ended // 99, '<', 10, 'within seconds (not at the end of its 60 s wait)');
note(sprintf('backend of a killed client ended after %.3f s', $ended // -1));
($out, $err) = try_sql(lease_sql('cq', 'gone', 1, '0.5 s'));
is($err, '', 'and its client id can wait again');

# --- 8. bounds and isolation levels --------------------------------------------
sql("SELECT querator.queues_create('bq')");
for my $bad ('-1 s', '16 minutes', '15 minutes 1 second')
{
	($out, $err) = try_sql("SELECT * FROM querator.queue_lease('bq', 'b', 1, '$bad')");
	like($err, qr/ERROR:  22023: wait is invalid/, "wait '$bad' is refused with 22023");
}
sql("SELECT querator.queue_produce('bq', 'ready'::text)");
($out, $err, $took) = try_sql(lease_sql('bq', 'b', 1, '15 minutes'));
is("$out|$err", '1:ready|', "wait '15 minutes' (the maximum) is accepted and returns a ready item at once");
($out, $err, $took) = try_sql(
	"SELECT count(*) || '|' || (clock_timestamp() - statement_timestamp() < '100 ms')::text FROM querator.queue_lease('bq', 'b', 1, '0')");
is($out, '0|true', "wait '0' on an empty queue returns no rows at once");
($out, $err) = try_sql("SELECT count(*) FROM querator.queue_lease('bq', 'b', 1, NULL)");
note("wait NULL: " . ($err eq '' ? "$out rows, no error" : $err));
for my $level ('REPEATABLE READ', 'SERIALIZABLE')
{
	($out, $err, $took) = try_sql(
		"BEGIN ISOLATION LEVEL $level;\nSELECT * FROM querator.queue_lease('bq', 'b', 1, '30 s');\nROLLBACK;");
	like($err, qr/ERROR:  25000: wait is invalid; a waiting lease cannot see new items under REPEATABLE READ or SERIALIZABLE/,
		"wait '30 s' inside $level fails with 25000");
	cmp_ok($took, '<', 10, 'at once (not after the 30 s wait)');
}
($out, $err) = try_sql("BEGIN ISOLATION LEVEL REPEATABLE READ;\n" . lease_sql('bq', 'b', 1, '0') . ";\nCOMMIT;");
is($err, '', "wait '0' is fine under REPEATABLE READ");

# --- a waiting call that fails inside a subtransaction -------------------------
# A plpgsql block catches the cancel of its waiting lease and its transaction
# commits. The waiter's place must be freed all the same: its client id must be
# usable again, and it must not take a share of later items.
sql("SELECT querator.queues_create('sub')");
$b->query_safe("SET statement_timeout = '500ms'");
($out, $err) = $b->query(
	"DO \$\$ BEGIN PERFORM * FROM querator.queue_lease('sub', 'ghost', 10, '5 s');"
	  . " EXCEPTION WHEN query_canceled THEN RAISE NOTICE 'caught %', SQLSTATE; END \$\$");
like($b->{stderr}, qr/caught 57014/, 'a plpgsql block caught the statement_timeout of its waiting lease');
$b->{stderr} = '';
$b->query_safe('RESET statement_timeout');
$b->quit;
($out, $err) = try_sql(lease_sql('sub', 'ghost', 1, '0.5 s'));
is($err, '', 'the client id of a waiting lease cancelled inside a subtransaction can wait again');
send_query($a, lease_sql('sub', 'w', 1, '30 s'));
ok(is_waiting($a), 'a waiter w on that queue');
$t_produce = time;
sql("SELECT querator.queue_produce('sub', 'for-w'::text)");
($out, $err, undef, $seen) = collect($a, 20);
cmp_ok($seen - $t_produce, '<', 10, 'the next waiter is woken at once, not at a recheck (no ghost takes its share)');
note(sprintf('waiter after the ghost got its item after %.3f s', $seen - $t_produce));

# --- server shutdown ends waits ---------------------------------------------------
send_query($a, lease_sql('cq', 'shutdown', 1, '120 s'));
ok(is_waiting($a), 'a waiter with wait 120 s');
my $t_stop = time;
$node->stop('fast');
my $stop_took = time - $t_stop;
cmp_ok($stop_took, '<', 30, 'a fast shutdown is not held up by the wait');
note(sprintf('fast shutdown with a waiter took %.3f s', $stop_took));
($out, $err) = collect($a, 20);
like($err // '', qr/terminating connection due to administrator command|server closed the connection/,
	'the waiting session was ended');
eval { $a->{run}->kill_kill };

done_testing();
