# Webhook transfers and the process's descriptors (issue 17). The server runs
# with max_files_per_process = 100 under a soft descriptor limit of 124 (as
# 1,000 under the usual 1,024): the worker's relation files of 40 webhook
# queues fill what PostgreSQL allows itself, and the queues ask for up to 256
# transfers at once to a receiver that always answers 200. curl's sockets are
# counted in PostgreSQL's accounting (AcquireExternalFD), so PostgreSQL closes
# cached relation files to make room and transfers beyond what can be reserved
# wait with their items unleased: every item arrives on its first attempt,
# nothing fails or is dead-lettered, and no "out of file descriptors" is logged.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;
use WebhookSink;

my $queues = 40;
my $per_queue = 25;
my $items = $queues * $per_queue;
my ($max_files, $soft_limit) = ($WebhookSink::descriptor_max_files, $WebhookSink::descriptor_soft_limit);

my $sink = start_sink(); # before the limit is lowered: it serves many connections at once

my $node = descriptor_limited_node('webhook_descriptors');

my $db = 'postgres';
sub sql { return $node->safe_psql($db, $_[0]); }

sql('CREATE EXTENSION querator');
ok(wait_for_workers($node, $db, 1, 10), 'the worker runs');
my ($worker) = worker_pids($node, $db);
like(slurp_file("/proc/$worker/limits"), qr/Max open files\s+$soft_limit\s/, "the worker's soft limit is $soft_limit");

my $url = sink_url($sink, '/ok');
for my $i (1 .. $queues)
{
	sql(qq{SELECT querator.queues_create('d$i', max_attempts => 3, webhook_url => '$url',
	        webhook_concurrency => 64, webhook_backoff => '100 ms', webhook_backoff_max => '200 ms');
	    SELECT querator.queue_pause('d$i');
	    SELECT querator.queue_produce('d$i', array_agg(convert_to('{"q": $i, "n": ' || g || '}', 'UTF8')),
	        encoding => 'application/json') FROM generate_series(1, $per_queue) g;});
}
my $log_offset = -s $node->logfile;
sql(join(' ', map { "SELECT querator.queue_resume('d$_');" } 1 .. $queues));

my $left = join(' + ', map { "(SELECT count(*) FROM querator.storage_items_list('d$_', NULL, 1000))"
	  . " + (SELECT count(*) FROM querator.storage_scheduled_list('d$_', NULL, 1000))" } 1 .. $queues);
my $took = poll_until($node, $db, "SELECT $left", '0', 180, 200);
ok(defined $took, 'every queue drains');

sink_got_each_once($sink, $items);
is(sql(q{SELECT sum(deliveries) || '|' || sum(failures) FROM querator.webhook_status()}), "$items|0",
	'webhook_status: every delivery succeeded, no failure');
my $dead = join(' + ', map { "(SELECT count(*) FROM querator.storage_dead_list('d$_', NULL, 1000))" } 1 .. $queues);
is(sql("SELECT $dead"), '0', 'nothing was dead-lettered');

my $log = slurp_file($node->logfile, $log_offset);
my $out_of_fds = () = $log =~ /out of file descriptors/g;
is($out_of_fds, 0, 'no "out of file descriptors" in the server log');

# The condition under test: the worker's cached relation files filled PostgreSQL's share.
my $open = () = glob("/proc/$worker/fd/*");
note("the worker has $open descriptors open (soft limit $soft_limit, max_files_per_process $max_files)");
cmp_ok($open, '>=', $max_files - 30, 'the worker keeps relation files open up to its limit');

stop_sink($sink);
$node->stop;
done_testing();
