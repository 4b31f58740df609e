# Issue 11, section 7: a long-poll waiter holds the locks of its queue for the
# whole wait, so queues_delete and DROP EXTENSION used to queue behind it for
# up to 15 minutes. They now end the waits they would block on (55000, a
# message naming what happens) and finish within seconds; waits on other
# queues go on; a new wait on a queue whose deletion is in progress is refused
# until that transaction ends, and a deletion rolled back leaves the queue
# usable.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use QueratorTap;
use QueratorWait;

my $node = querator_node('wait_ddl');
my $db = 'postgres';
QueratorWait::init($node, $db);

sub sql { return $node->safe_psql($db, $_[0]); }

# Runs $sql in a new psql under a 20 s statement_timeout; returns (exit code, stderr, seconds taken).
sub timed_sql
{
	my ($sql) = @_;
	my $t0 = time;
	my ($ret, $out, $err) =
	  $node->psql($db, "\\set VERBOSITY verbose\nSET statement_timeout = '20s';\n$sql", timeout => 60);
	return ($ret, $err, time - $t0);
}

sql('CREATE EXTENSION querator');
sql("SELECT querator.queues_create(q) FROM unnest(ARRAY['a', 'b', 'c']) AS q");
sql("SELECT querator.queues_create('d', partitions => 4)");
my ($wa, $wb, $wc, $wd, $holder) = map { session() } 1 .. 5;
my ($ret, $err, $took, $out);

# --- queues_delete of a queue with a waiter ----------------------------------
send_query($wa, lease_sql('a', 'wa', 1, '10 min'));
send_query($wb, lease_sql('b', 'wb', 1, '10 min'));
ok(is_waiting($wa) && is_waiting($wb), 'a waiter on a and one on b');
($ret, $err, $took) = timed_sql("SELECT querator.queues_delete('a', force => true)");
is($ret, 0, 'queues_delete(a) succeeds while a waiter waits on a') or diag($err);
cmp_ok($took, '<', 10, 'within seconds (not blocked until the 20 s statement_timeout)');
note(sprintf('queues_delete took %.2f s', $took));
($out, $err) = collect($wa, 20);
like($err // '', qr/ERROR:  55000: queue is being deleted; the wait on 'a' ends/,
	'the waiter on a ends with 55000 "queue is being deleted"');
ok(is_waiting($wb, 1), 'the waiter on b still waits');
is(sql("SELECT count(*) FROM querator.queues_list() WHERE queue_name = 'a'"), '0', 'a is gone');

# --- a deletion in progress refuses new waits; rolled back, it leaves the queue usable
$holder->query_safe("BEGIN; SELECT querator.queues_delete('c')");
my $t0 = time;
($ret, $out, $err) = $node->psql($db, "\\set VERBOSITY verbose\nSET statement_timeout = '20s';\n"
	  . lease_sql('c', 'late', 1, '10 min'), timeout => 60);
like($err, qr/ERROR:  55000: queue is being deleted; the wait on 'c' ends/,
	'a new wait on a queue being deleted is refused with 55000');
cmp_ok(time - $t0, '<', 10, 'at once (not blocked until the 20 s statement_timeout)');
$holder->query_safe('ROLLBACK');
send_query($wc, lease_sql('c', 'wc', 1, '10 min'));
ok(is_waiting($wc), 'after the deletion rolled back, a wait on c works');
sql("SELECT querator.queue_produce('c', 'x'::text)");
($out, $err) = collect($wc, 20);
is($out, '1:x', 'and gets the item produced on c');

# --- a shrink (queues_update with fewer partitions) of a queue with a waiter
send_query($wd, lease_sql('d', 'wd', 1, '10 min'));
ok(is_waiting($wd), 'a waiter on d (4 partitions)');
($ret, $err, $took) = timed_sql("SELECT querator.queues_update('d', partitions => 2)");
is($ret, 0, 'queues_update(d, partitions => 2) succeeds while a waiter waits on d') or diag($err);
cmp_ok($took, '<', 10, 'within seconds (not blocked until the 20 s statement_timeout)');
note(sprintf('the shrink took %.2f s', $took));
($out, $err) = collect($wd, 20);
like($err // '', qr/ERROR:  55000: queue is being resized; the wait on 'd' ends/,
	'the waiter on d ends with 55000 "queue is being resized"');
is(sql("SELECT partitions FROM querator.queues_info('d')"), '2', 'd has 2 partitions');

# --- DROP EXTENSION with a waiter ---------------------------------------------
($ret, $err, $took) = timed_sql('DROP EXTENSION querator CASCADE');
is($ret, 0, 'DROP EXTENSION succeeds while a waiter waits') or diag($err);
cmp_ok($took, '<', 10, 'within seconds (not blocked until the 20 s statement_timeout)');
note(sprintf('DROP EXTENSION took %.2f s', $took));
($out, $err) = collect($wb, 20);
like($err // '', qr/ERROR:  55000: extension is being dropped; the wait on 'b' ends/,
	'the waiter on b ends with 55000 "extension is being dropped"');
is(sql("SELECT count(*) FROM pg_extension WHERE extname = 'querator'"), '0', 'the extension is gone');

$_->quit for ($wa, $wb, $wc, $wd, $holder);
$node->stop;
done_testing();
