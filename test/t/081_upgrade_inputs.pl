# ALTER EXTENSION querator UPDATE from 0.1.0: a queue whose durations 0.1.0
# accepted past today's limits (every lease then failed with "timestamp out of
# range") is brought down to the limits with a WARNING, and the text[] form of
# queue_produce stops flattening 2-D arrays.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('upgrade_inputs');
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

sql("CREATE EXTENSION querator VERSION '0.1.0'");
# queues created as by the 0.1.0 library (its tables)
with_0_1_0_queue_tables($node, $db, q{
	SELECT querator.queues_create('old', expire_timeout => '1 day');
	SELECT querator.queues_create('fine', lease_timeout => '5 minutes')});
sql("SELECT querator.queue_produce('old', 'x'::text)");
# what 0.1.0 let a caller store (the library now refuses it, so write the row as it was)
sql("UPDATE querator.queues SET lease_timeout = '1000000 years', expire_timeout = '178000000 years',"
	  . " webhook_backoff_max = '1000 years' WHERE name = 'old'");
my ($ret, $stdout, $stderr) = $node->psql($db, "SELECT count(*) FROM querator.queue_lease('old', 'c')");
like($stderr, qr/timestamp out of range/, 'at 0.1.0 such a queue cannot be leased from');
is(sql("SELECT cardinality(querator.queue_produce('fine', ARRAY[['a', 'b'], ['c', 'd']]::text[]))"), '4',
	'at 0.1.0 the text[] form flattens a 2-D array (the old SQL wrapper)');
is(sql("SELECT querator.queue_clear('fine')"), '4', 'cleared');

($ret, $stdout, $stderr) = $node->psql($db, "ALTER EXTENSION querator UPDATE TO '0.2.0'");
is($ret, 0, 'ALTER EXTENSION querator UPDATE succeeds');
like($stderr, qr/WARNING:  querator: durations of queue 'old' changed to fit the limits of 0.2.0: expire_timeout 10 years, lease_timeout 24:00:00, webhook_backoff_max 24:00:00$/m,
	'with a WARNING naming the queue and what changed');
unlike($stderr, qr/'fine'/, 'a queue within the limits is not named');
is(sql("SELECT lease_timeout || ' ' || expire_timeout FROM querator.queues_info('old')"), '24:00:00 10 years',
	'its durations are the limits now');
is(sql("SELECT webhook_backoff_max FROM querator.queues WHERE name = 'old'"), '24:00:00', 'webhook backoff max too');
is(sql("SELECT lease_timeout FROM querator.queues_info('fine')"), '00:05:00', 'the other queue is unchanged');
is(sql("SELECT count(*) FROM querator.queue_lease('old', 'c')"), '1', 'and the queue leases again');

($ret, $stdout, $stderr) = $node->psql($db,
	"\\set VERBOSITY verbose\nSELECT querator.queue_produce('fine', ARRAY[['a', 'b'], ['c', 'd']]::text[])");
like($stderr, qr/ERROR:  22023: items is invalid; must be a one-dimensional array, received 2 dimensions/,
	'after the update the text[] form refuses a 2-D array');
is(sql("SELECT cardinality(querator.queue_produce('fine', ARRAY['a', 'b']::text[]))"), '2', 'and takes a 1-D one');
is(sql("SELECT string_agg(convert_from(payload, 'UTF8') || '/' || encoding, ' ' ORDER BY id)"
	  . " FROM querator.storage_items_list('fine')"), 'a/text/plain b/text/plain', 'with the same payloads and encoding');

done_testing();
