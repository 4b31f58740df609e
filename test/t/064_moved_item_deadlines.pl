# Items that an operation moves into a queue with an expire_timeout get a new
# expire deadline there, and the worker must wake for it, as it does for a
# produce: a redrive (to the partition the item died in, or from a dead queue
# back to its source) and a dead-lettering into a dead queue. The worker here
# sleeps an hour when it knows no deadline, so an expiry within seconds shows
# that the operation woke it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('moved_item_deadlines', "querator.worker_idle_interval = 3600\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

# Until the worker knows no deadline: only a wake-up from a later call can make it run again.
sub worker_idle
{
	return defined poll_until($node, $db,
		"SELECT next_wakeup IS NULL FROM querator.worker_status() WHERE database = '$db'", 't', 20);
}

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');

sql("SELECT querator.queues_create('own', lease_timeout => '1 s', expire_timeout => '2 s')");
sql("SELECT querator.queues_create('expiring_dq', lease_timeout => '1 s', expire_timeout => '2 s')");
sql("SELECT querator.queues_create('feeder', lease_timeout => '1 hour', dead_queue => 'expiring_dq')");
sql("SELECT querator.queues_create('plain_dq')");
sql("SELECT querator.queues_create('source', lease_timeout => '2 s', expire_timeout => '3 s', dead_queue => 'plain_dq')");

# Dead letters to redrive, dead-lettered long before the produce's expiry deadline.
for my $queue ('own', 'source')
{
	sql("SELECT querator.queue_produce('$queue', 'x'::text)");
	my $leased = sql("SELECT id FROM querator.queue_lease('$queue', 'c', 1)");
	sql("SELECT querator.queue_retry('$queue', ARRAY[$leased], dead => true)");
}
is(sql("SELECT (SELECT count(*) FROM querator.storage_dead_list('own')) || ' '
        || (SELECT count(*) FROM querator.storage_items_list('plain_dq'))"),
	'1 1', 'one dead letter in each');

# --- redrive to the partition the item died in
ok(worker_idle(), 'the worker knows no deadline');
is(sql("SELECT querator.queue_redrive('own')"), '1', 'the dead letter is redriven');
ok(defined poll_until($node, $db,
	"SELECT reason FROM querator.storage_dead_list('own')", 'expired', 15),
	'the redriven item expires after the queue\'s expire_timeout');

# --- redrive from a dead queue back to its source
ok(worker_idle(), 'the worker knows no deadline again');
is(sql("SELECT querator.queue_redrive('plain_dq')"), '1', 'the dead queue\'s item goes back to its source');
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_items_list('plain_dq')", '1', 15)
	  && sql("SELECT count(*) FROM querator.storage_items_list('source')") eq '0',
	'it expires in its source after the source\'s expire_timeout, back into the dead queue');

# --- dead-lettering into a dead queue with an expire_timeout
sql("SELECT querator.queue_produce('feeder', 'f'::text)");
my $id = sql("SELECT id FROM querator.queue_lease('feeder', 'c', 1)");
ok(defined poll_until($node, $db,
	"SELECT next_wakeup > now() + interval '30 min' FROM querator.worker_status() WHERE database = '$db'", 't', 20),
	'the worker sleeps towards the lease deadline, an hour away');
is(sql("SELECT querator.queue_retry('feeder', ARRAY[$id], dead => true)"), '1', 'the item is dead-lettered');
ok(defined poll_until($node, $db,
	"SELECT reason FROM querator.storage_dead_list('expiring_dq')", 'expired', 15),
	'in the dead queue it expires after the dead queue\'s expire_timeout');

done_testing();
