# A wake-up plans the worker's next round; it does not run one. A consumer that
# leases and completes in one transaction (most job runners) leaves no lease for
# the worker to expire: a stream of such transactions costs at most a round or
# two, not a round per commit (0.1.0 ran about two rounds for every three items).
# A deadline earlier than the one the worker plans for still wakes it in time,
# and a lease that survives its transaction is expired at its deadline.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use QueratorTap;

# An hour of idle sleep: only wake-ups run rounds during the test.
my $node = querator_node('worker_wakeups', "querator.worker_idle_interval = 3600\n");
my $db = 'postgres';
my $items = 300;

sub sql { return $node->safe_psql($db, $_[0]); }
sub rounds { return worker_rounds($node, $db); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the querator worker runs');
sql("SELECT querator.queues_create('jobs', lease_timeout => '1 hour')");
sql("SELECT querator.queues_create('short', lease_timeout => '2 s')");
sql("SELECT querator.queue_produce('jobs', ARRAY(SELECT 'j' || g FROM generate_series(1, $items) g))");
sql("SELECT querator.queue_produce('short', 's'::text)");

my $before = settled_worker_rounds($node, $db);

# One transaction per item: lease it, complete it, commit.
sql(<<"SQL");
DO \$\$
DECLARE leased bigint;
BEGIN
  FOR i IN 1..$items LOOP
    SELECT id INTO leased FROM querator.queue_lease('jobs', 'runner', 1);
    PERFORM querator.queue_complete('jobs', leased);
    COMMIT;
  END LOOP;
END \$\$
SQL
is(sql("SELECT count(*) FROM querator.storage_items_list('jobs')"), '0', "$items items leased and completed, one transaction each");
usleep(1_000_000);
my $after = rounds();
cmp_ok($after - $before, '<=', 2, "the $items commits ran at most 2 worker rounds")
  or diag("rounds: $before before, $after after");
is(sql("SELECT next_wakeup > now() + interval '50 minutes' FROM querator.worker_status() WHERE database = '$db'"),
	't', 'the worker plans its next round for the first of those lease deadlines, an hour ahead');

# An earlier deadline than the planned one wakes the worker, which expires the lease on time.
my $deadline = sql("SELECT lease_deadline FROM querator.queue_lease('short', 'holder', 1)");
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_items_list('short') WHERE NOT leased AND attempts = 1", '1', 20),
	'a 2 s lease committed after them is expired by the worker');
is(sql("SELECT clock_timestamp() >= '$deadline'::timestamptz"), 't', 'not before its deadline');

$node->stop;
done_testing();
