# Long-poll lease: a transaction that touches two partitions of a queue wakes
# its waiters for the items it made ready. The commit dealt a queue's new items
# only from the queue's first pending entry; when that entry made nothing ready
# (a complete or a lease in another partition came first in the transaction),
# the waiters were not woken and slept until their recheck.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use QueratorTap;
use QueratorWait;

# A recheck far beyond the wait: only a wake-up at commit can end it early.
my $node = querator_node('wait_partitions', "querator.wait_recheck_interval = 60\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

QueratorWait::init($node, $db);
sql('CREATE EXTENSION querator');
sql("SELECT querator.queues_create('two', partitions => 2)");

# Four items in one partition (one produce call fills one partition); B leases one.
sql("SELECT querator.queue_produce('two', ARRAY['a', 'b', 'c', 'd'])");
my $b = session();
my $held = $b->query_safe("SELECT id FROM querator.queue_lease('two', 'b', 1)");

# C holds the other three in an open transaction: nothing is leasable.
my $c = session();
$c->query_safe('BEGIN');
is($c->query_safe("SELECT count(*) FROM querator.queue_lease('two', 'c', 3)"), '3', 'C holds the other three items');

my $w = session();
send_query($w, lease_sql('two', 'w', 1, '20 s'));
ok(is_waiting($w), 'a waiter sleeps on the queue');

# B completes its item (partition of a..d) and produces one item, which goes to
# the other partition (fewest unleased): two partitions in one transaction.
$b->query_safe('BEGIN');
$b->query_safe("SELECT querator.queue_complete('two', ARRAY[$held]::bigint[])");
$b->query_safe("SELECT querator.queue_produce('two', 'new'::text)");
$b->query_safe('COMMIT');
my $committed = time;
my ($out, $err, undef, $seen) = collect($w, 25);
is($out, '1:new', 'the waiter gets the item produced in the other partition');
is($err, '', 'without error');
cmp_ok(($seen // 99) - $committed, '<', 2, 'within 2 s of the commit, not at its recheck');

$c->query_safe('ROLLBACK');
$_->quit for ($b, $c, $w);
done_testing();
