# Lease deadlines have no index: the worker keeps a floor per partition in
# shared memory (no lease ends before it) and reads a partition's lease table
# only once that floor is due (docs/design.md, "Lease deadlines"). Checked:
#  - while no lease is due, worker rounds leave the lease table alone;
#  - a lease capped at its item's expire deadline (lease_timeout longer than
#    what is left of the item's life) ends at that earlier deadline;
#  - an extend to a shorter timeout moves the lease's end earlier, and the
#    worker ends it then;
#  - after a restart (the floor is unknown) a lease taken before it is ended.
# Every bound is seconds long, against leases of an hour that the wrong
# behaviour would leave in place.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('lease_floor', "querator.worker_idle_interval = 1\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');

# --- no lease due: the worker does not read the lease table
sql(q{SELECT querator.queues_create('long', lease_timeout => '1 hour');
	SELECT querator.queue_produce('long', ARRAY['a', 'b']);
	SELECT count(*) FROM querator.queue_lease('long', 'c', 1);});
my $long = sql("SELECT id FROM querator.queues WHERE name = 'long'");
my $reads_sql = "SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables
	WHERE schemaname = 'querator_data' AND relname = 'q${long}_p0_leases'";
# The first round looks once (the floor is unknown until then); the worker
# reports its table statistics at most once a second, so wait for them too.
ok(rounds_pass($node, $db, 3), 'the worker ran its first rounds');
my $reads = sql($reads_sql);
ok(rounds_pass($node, $db, 4), 'the worker ran four more rounds');
sql('SELECT pg_sleep(1.5)');
is(sql($reads_sql), $reads, 'rounds with no lease due leave the lease table alone');

# --- a lease capped at its item's expire deadline ends then (dead-lettered: expired)
# (lease_timeout cannot exceed expire_timeout: the queue is made longer after the produce.)
sql(q{SELECT querator.queues_create('short_life', lease_timeout => '1 s', expire_timeout => '3 s');
	SELECT querator.queue_produce('short_life', 'x'::text);});
ok(rounds_pass($node, $db, 1), 'a round has looked at the new queue\'s leases (none: its floor is "no lease")');
sql(q{SELECT querator.queues_update('short_life', lease_timeout => '1 hour', expire_timeout => '2 hours');});
is(sql(q{SELECT lease_deadline < now() + interval '1 minute' FROM querator.queue_lease('short_life', 'c', 1)}), 't',
	'the lease ends with its item, within 3 s');
ok(defined poll_until($node, $db,
		q{SELECT count(*) = 1 FROM querator.storage_dead_list('short_life') WHERE reason = 'expired'}, 't', 30),
	'the worker ended it at its item\'s expire deadline');

# --- an extend to a shorter timeout: the lease ends at its new, earlier deadline
sql(q{SELECT querator.queues_create('shortened', lease_timeout => '1 hour');
	SELECT querator.queue_produce('shortened', 'y'::text);});
my $id = sql(q{SELECT id FROM querator.queue_lease('shortened', 'c', 1)});
sql('SELECT pg_sleep(1.5)'); # a round has looked at the lease: the floor is its hour
sql("SELECT querator.queue_extend('shortened', ARRAY[${id}::bigint], lease_timeout => '1 s')");
ok(defined poll_until($node, $db,
		q{SELECT count(*) = 1 FROM querator.storage_items_list('shortened') WHERE NOT leased AND attempts = 1}, 't', 30),
	'the worker ended the shortened lease at its new deadline');

# --- a restart forgets the floors: a lease taken before it still ends
sql(q{SELECT querator.queues_create('restarted', lease_timeout => '2 s');
	SELECT querator.queue_produce('restarted', 'z'::text);
	SELECT count(*) FROM querator.queue_lease('restarted', 'c', 1);});
$node->restart;
ok(wait_for_workers($node, $db, 1, 30), 'the worker runs again');
ok(defined poll_until($node, $db,
		q{SELECT count(*) = 1 FROM querator.storage_items_list('restarted') WHERE NOT leased AND attempts = 1}, 't', 30),
	'a lease taken before the restart is ended after it');

done_testing();
