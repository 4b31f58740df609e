# Concurrent lease / complete / retry / expiry on one queue must never deadlock.
# Regression test: complete used to delete the lease row before the item row,
# the opposite of a lease's order (item lock, then lease insert), and 4
# pgbench clients hit "deadlock detected" a few times in 10 s.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('no_deadlock', "deadlock_timeout = '100ms'\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION querator;
	SELECT querator.queues_create('lc', lease_timeout => '2 seconds', partitions => 2);
});

# Every client produces, leases a batch, then completes or retries it; leases of
# 2 s that are never completed make the worker expire leases meanwhile.
my $script = "${PostgreSQL::Test::Utils::tmp_check}/lease_complete.sql";
PostgreSQL::Test::Utils::append_to_file($script, q{
SELECT querator.queue_produce('lc', ARRAY['a','b','c','d']::text[]);
SELECT quote_literal(coalesce(array_agg(id), '{}')::text) AS ids FROM querator.queue_lease('lc', 'c' || :client_id, 4) \gset
\set action random(1, 10)
\if :action <= 6
SELECT querator.queue_complete('lc', :ids::bigint[]) WHERE cardinality(:ids::bigint[]) > 0;
\elif :action <= 9
SELECT querator.queue_retry('lc', :ids::bigint[]) WHERE cardinality(:ids::bigint[]) > 0;
\endif
});

my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', '8', '--max-tries=1', '--failures-detailed',
	  '-h', $node->host, '-p', $node->port, '-f', $script, 'postgres' ],
	'>', \$stdout, '2>', \$stderr);
note($stdout);
like($stdout, qr/number of transactions actually processed: [1-9]/, 'the load ran');
like($stdout, qr/number of deadlock failures: 0 /, 'no deadlock between lease, complete, retry and expiry');
like($stdout, qr/number of failed transactions: 0 /, 'no failed transaction at all');
unlike(slurp_file($node->logfile), qr/deadlock detected/, 'the server log has no deadlock');

$node->stop;
done_testing();
