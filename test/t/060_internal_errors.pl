# Errors of querator's internal SQL (issue 11, section 5): the client gets the original
# SQLSTATE and querator's own message, never the statement or an internal table name,
# whatever its verbosity; the server log keeps the original error with its statement (or,
# for the writes over the access methods, the write and its table).
# Cases: a read-only session (what a standby says too) and a lock timeout behind a
# session that holds a queue table.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('internal_errors');
my $db = 'postgres';
$node->safe_psql($db, "CREATE EXTENSION querator; SELECT querator.queues_create('te')");
my $items = $node->safe_psql($db, "SELECT 'querator_data.q' || id || '_p0_items' FROM querator.queues WHERE name = 'te'");
my $segment = "${items}_s0"; # where a new queue's items go (0.6.0: docs/design.md, "Segments")

# Runs $sql in a new psql with every error field shown; returns its stderr.
sub client_error
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql($db, "\\set VERBOSITY verbose\nSET client_min_messages = debug5;\n$sql",
		timeout => 30);
	return $err;
}

# --- a read-only session: 25006 -------------------------------------------------
my $log_offset = -s $node->logfile;
my $err = client_error("SET default_transaction_read_only = on;\nSELECT querator.queue_produce('te', 'x'::text);");
like($err, qr/ERROR:  25006: read-only transaction; querator cannot change queues or items in a read-only transaction/,
	'read-only: 25006 with querator\'s message');
unlike($err, qr/querator_data|INSERT INTO|internal statement failed/, 'read-only: no statement, table or log line for the client');
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/LOG:  querator: internal statement failed: cannot execute INSERT in a read-only transaction/,
	'read-only: the original error is in the server log');
# (produce writes over the access methods since 0.4.0: its context names the write and the table)
like($log, qr/CONTEXT:  querator produce: INSERT INTO \Q$segment\E$/m, 'read-only: with querator\'s write');

# --- a lock timeout inside querator's statement: 55P03 passes unchanged ----------
my $locker = $node->background_psql($db);
$locker->query_safe("BEGIN; LOCK TABLE $items IN ACCESS EXCLUSIVE MODE");
$log_offset = -s $node->logfile;
$err = client_error("SET lock_timeout = '200ms';\nSELECT querator.queue_produce('te', 'x'::text);");
like($err, qr/ERROR:  55P03: canceling statement due to lock timeout/, 'lock timeout: 55P03 with PostgreSQL\'s message');
unlike($err, qr/querator_data|INSERT INTO|CONTEXT/, 'lock timeout: no statement, table or context for the client');
$log = slurp_file($node->logfile, $log_offset);
like($log, qr/LOG:  querator: internal statement failed: canceling statement due to lock timeout.*\n.*CONTEXT:  querator produce: INSERT INTO \Q$segment\E$/m,
	'lock timeout: the original error and the write are in the server log');
$locker->query_safe('ROLLBACK');
$locker->quit;

# nothing was produced, and the queue works
is($node->safe_psql($db, "SELECT count(*) FROM querator.storage_items_list('te')"), '0', 'no item was produced');
ok($node->safe_psql($db, "SELECT querator.queue_produce('te', 'x'::text)") > 0, 'produce works again');

$node->stop;
done_testing();
