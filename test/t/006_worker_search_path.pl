# Issue 11, section 1: a database owner who is not a superuser shadows the
# operators the worker's statements use (timestamptz <= and + interval) and the
# type text (a domain whose CHECK reports) in a schema of their own, and puts
# that schema first in the database's search_path. After a restart, the worker (and its webhook delivery) expires
# leases, promotes scheduled items and delivers a webhook item in that
# database: the attacker's operator must never run in it, whatever the
# database setting says. A session of the attacker shows that the shadowing
# itself works.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;
use WebhookSink;

my $node = querator_node('worker_search_path', "log_line_prefix = '%m [%p] %b '\n" . sink_conf());
my $db = 'evil_db';

$node->safe_psql('postgres', "CREATE ROLE mallory LOGIN; CREATE DATABASE $db OWNER mallory");
$node->safe_psql($db, 'CREATE EXTENSION querator');

# Every call of the shadowing operators logs who ran it.
$node->safe_psql($db, q{
SET ROLE mallory;
CREATE SCHEMA evil;
CREATE FUNCTION evil.report(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE LOG 'querator-evil % called by user=% super=%', what, current_user,
        (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user);
END $$;
CREATE FUNCTION evil.ts_le(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.report('<='); RETURN a OPERATOR(pg_catalog.<=) b; END $$;
CREATE FUNCTION evil.ts_plus(a timestamptz, b interval) RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.report('+'); RETURN a OPERATOR(pg_catalog.+) b; END $$;
CREATE OPERATOR evil.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.ts_le);
CREATE OPERATOR evil.+ (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = evil.ts_plus);
CREATE FUNCTION evil.text_check(v pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.report('text'); RETURN true; END $$;
CREATE DOMAIN evil.text AS pg_catalog.text CHECK (evil.text_check(VALUE));
GRANT USAGE ON SCHEMA evil TO PUBLIC;
});

# Work for the worker after the restart: leases that expire, scheduled items
# that come due, items with an expire deadline, and a webhook queue.
my $sink = start_sink();
my $url = sink_url($sink, '/ok');
$node->safe_psql($db, qq{
SELECT querator.queues_create('q', lease_timeout => '2 s', expire_timeout => '1 hour');
SELECT querator.queue_produce('q', ARRAY['a', 'b', 'c', 'd']::pg_catalog.text[]);
SELECT count(*) FROM querator.queue_lease('q', 'consumer', 3);
SELECT querator.queue_produce('q', ARRAY['later1', 'later2']::pg_catalog.text[], enqueue_at => now() + interval '4 s');
SELECT querator.queues_create('wq', webhook_url => '$url');
});

# The attack: the database owner changes the database's search_path.
$node->safe_psql($db, "SET ROLE mallory; ALTER DATABASE $db SET search_path = evil, pg_catalog");
my $offset = -s $node->logfile;
$node->restart;
ok(wait_for_workers($node, $db, 1, 20), 'the worker serves the database after the restart');
# The test's own statements name pg_catalog.text: "text" is the attacker's now.
$node->safe_psql($db, q{SELECT querator.queue_produce('wq', 'hook'::pg_catalog.text)});
# The SQL wrappers run under the caller's path: the jsonb forms cast to text.
$node->safe_psql($db, q{SELECT querator.queue_produce('q', '{"j": 1}'::jsonb);
                        SELECT querator.queue_produce('q', ARRAY['{"j": 2}']::jsonb[])});

ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_items_list('q') WHERE NOT leased AND attempts = 1", '3', 20, 50),
	'the worker expired the three leases');
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_scheduled_list('q')", '0', 20, 50),
	'the worker promoted the scheduled items');
ok(queue_drained($node, $db, 'wq', 20), 'the worker delivered the webhook item');
is(scalar(grep { $_->{path} eq '/ok' } sink_requests($sink)), 1, 'the sink received it');
# A lease taken now expires under the worker's eyes too (the claim's + interval).
$node->safe_psql($db, q{SELECT querator.queues_update('q', lease_timeout => '1 s');
                        SELECT count(*) FROM querator.queue_lease('q', 'consumer2', 2);
                        SELECT count(*) FROM querator.queue_complete_and_lease('q', 'consumer3', '{}', 1)});
ok(defined poll_until($node, $db,
	"SELECT count(*) FROM querator.storage_items_list('q') WHERE leased", '0', 20, 50),
	'the worker expired the new leases');

# The shadowing works for a session of the database (so the checks below can fail).
$node->safe_psql($db, "SELECT now() <= now(), 'x'::text", extra_params => [ '-U', 'mallory' ]);
my $log = slurp_file($node->logfile, $offset);
like($log, qr/querator-evil <= called by user=mallory/, "the attacker's operator shadows pg_catalog's in a session");
like($log, qr/querator-evil text called by user=mallory/, "and the attacker's text shadows pg_catalog's");

my @calls = grep { !/user=mallory/ } ($log =~ /^.*querator-evil.*$/mg);
is(scalar(@calls), 0, "the attacker's objects never ran in querator's processes or functions")
  or diag(join("\n", @calls[ 0 .. ($#calls < 9 ? $#calls : 9) ]));
# Backends: the C functions carry no SET search_path since 0.3.0; the library
# pins the resolution of its own statements itself (spi.cpp, own_search_path),
# which the calls above, made under the attacker's path, prove. A function
# with a setting of its own would mean a second mechanism to keep right.
is($node->safe_psql($db, q{
SELECT coalesce(string_agg(p.oid::regprocedure::pg_catalog.text, ', '), '')
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'querator'
  JOIN pg_catalog.pg_language l ON l.oid = p.prolang
 WHERE l.lanname = 'c' AND p.proconfig IS NOT NULL}),
	'', 'no C function of querator carries a setting of its own');
# A lease taken now expires under the worker's eyes too (the claim's + interval).
is($node->safe_psql($db, "SELECT setting FROM pg_settings WHERE name = 'search_path'"),
	'evil, pg_catalog', 'sessions still get the database setting');

stop_sink($sink);
$node->stop;
done_testing();
