# The worker never waits for a table lock: while a session holds one queue's
# tables (LOCK TABLE, or a DDL such as a transaction that deletes queues), the
# worker still expires leases and delivers webhooks of the other queues, and
# serves the locked queue once the lock is gone. Waiting instead stalled every
# queue behind the lock and could deadlock with a transaction that drops
# several queues (the worker's webhook cycle spans queues).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;
use WebhookSink;

my $node = querator_node('worker_never_waits', sink_conf());
my $db = 'postgres';
sub sql { return $node->safe_psql($db, $_[0]); }

my $sink = start_sink();
my $url = sink_url($sink, '/ok');

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');
# Created first, so the worker comes to the locked queues first in each round.
sql(qq{SELECT querator.queues_create('locked', lease_timeout => '1 second');
       SELECT querator.queues_create('hook_locked', webhook_url => '$url', lease_timeout => '5 seconds');
       SELECT querator.queues_create('free', lease_timeout => '1 second');
       SELECT querator.queues_create('hook_free', webhook_url => '$url', lease_timeout => '5 seconds');
       SELECT querator.queue_pause('hook_locked');
       SELECT querator.queue_produce('locked', ARRAY['l1', 'l2', 'l3']::text[]);
       SELECT querator.queue_produce('free', ARRAY['f1', 'f2', 'f3']::text[]);
       SELECT count(*) FROM querator.queue_lease('locked', 'c', 10);
       SELECT count(*) FROM querator.queue_lease('free', 'c', 10);
       SELECT querator.queue_produce('hook_locked', 'hl'::text)});
my $tables = sql(q{SELECT string_agg(format('querator_data.q%s_p0_%s', q.id, t), ', ')
                     FROM querator.queues q, unnest(ARRAY['items', 'leases', 'scheduled']) t
                    WHERE q.name IN ('locked', 'hook_locked')});

my $locker = $node->background_psql($db);
$locker->query_safe("BEGIN; LOCK TABLE $tables IN ACCESS EXCLUSIVE MODE");
# The webhook queue was paused so that its item waits; resuming it now (a
# catalog change) makes the worker try to lease it while its tables are locked.
sql(q{SELECT querator.queue_resume('hook_locked');
      SELECT querator.queue_produce('hook_free', 'hf'::text)});

ok(defined poll_until($node, $db,
	q{SELECT count(*) FROM querator.storage_items_list('free') WHERE NOT leased}, '3', 15),
	"the leases of another queue expire while one queue's tables are locked");
ok(defined poll_until($node, $db,
	q{SELECT count(*) FROM querator.storage_items_list('hook_free')}, '0', 15),
	"another queue's webhook item is delivered meanwhile");
is(scalar(grep { $_->{body} eq 'hf' } sink_requests($sink)), 1, '... once');
is(scalar(grep { $_->{body} eq 'hl' } sink_requests($sink)), 0, 'the locked webhook queue delivered nothing');
is(sql(q{SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE a.backend_type = 'querator worker' AND NOT l.granted}),
	'0', 'the worker waits for no lock');

$locker->query_safe('COMMIT');
$locker->quit;
ok(defined poll_until($node, $db,
	q{SELECT count(*) FROM querator.storage_items_list('locked') WHERE NOT leased}, '3', 15),
	'once the lock is gone, the locked queue is served: its leases expire');
ok(defined poll_until($node, $db,
	q{SELECT count(*) FROM querator.storage_items_list('hook_locked')}, '0', 15),
	'... and its webhook item is delivered');
is(scalar(grep { $_->{body} eq 'hl' } sink_requests($sink)), 1, '... once');

# A transaction that deletes several queues while the worker works them.
sql(qq{SELECT querator.queues_create('del_' || g, webhook_url => '$url', lease_timeout => '1 second')
         FROM generate_series(1, 4) g;
       SELECT querator.queue_produce('del_' || g, ARRAY(SELECT 'd' || i FROM generate_series(1, 50) i))
         FROM generate_series(1, 4) g});
my ($ret, $out, $err) = $node->psql($db,
	q{SELECT querator.queues_delete('del_' || g, true) FROM generate_series(1, 4) g ORDER BY g DESC});
is($ret, 0, 'one transaction deletes four webhook queues while the worker delivers them') or diag($err);
unlike($node->logfile && slurp_file($node->logfile), qr/deadlock detected/, 'no deadlock anywhere');

stop_sink($sink);
$node->stop;
done_testing();
