# Commit effects recorded in many subtransactions: a PL/pgSQL loop with an
# EXCEPTION block per iteration (one subtransaction each) produces 20,000
# items and rolls back every tenth iteration and a nested block in others.
# What the committed iterations recorded is applied at commit, and nothing of
# the rolled-back ones: the counters, the partition spread (chosen by the
# transaction's own view of the estimates), the waiters woken. A committed
# subtransaction hands its effects to its parent, so rolling back an outer
# savepoint drops those of every iteration inside it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;
use QueratorWait;

# A recheck far beyond the test: only a wake-up at commit ends a wait.
my $node = querator_node('subtransaction_effects', "querator.wait_recheck_interval = 600\n");
my $db = 'postgres';

sub sql { return $node->safe_psql($db, $_[0]); }

QueratorWait::init($node, $db);
sql('CREATE EXTENSION querator');
sql("SELECT querator.queues_create('loop', partitions => 2)");

my @waiters = map { session() } 1 .. 2;
for my $i (0 .. $#waiters)
{
	send_query($waiters[$i], lease_sql('loop', "w$i", 5, '10 min'));
	ok(is_waiting($waiters[$i]), "waiter $i sleeps on the empty queue");
}

# 20,000 iterations: 2,000 roll back their produce, and every 7th runs a nested
# block whose produce rolls back while its iteration commits.
my $loop = <<'SQL';
DO $$
BEGIN
    FOR i IN 1 .. %d LOOP
        BEGIN
            PERFORM querator.queue_produce('loop', 'item ' || i);
            IF i %% 7 = 0 THEN
                BEGIN
                    PERFORM querator.queue_produce('loop', 'inner ' || i);
                    RAISE EXCEPTION 'inner block undone';
                EXCEPTION WHEN raise_exception THEN NULL;
                END;
            END IF;
            IF i %% 10 = 0 THEN
                RAISE EXCEPTION 'iteration undone';
            END IF;
        EXCEPTION WHEN raise_exception THEN NULL;
        END;
    END LOOP;
END $$
SQL
sql(sprintf($loop, 20000));

for my $i (0 .. $#waiters)
{
	my ($out, $err) = collect($waiters[$i], 30);
	like($out // '', qr/^5:item \d+(,item \d+){4}$/, "waiter $i is dealt a full batch at commit");
	is($err, '', "waiter $i: without error");
}

my $per_partition = "SELECT string_agg(total || '/' || produced, ' ' ORDER BY partition)"
  . " FROM querator.queue_stats('loop')";
my ($p0, $c0, $p1, $c1) = sql($per_partition) =~ m{^(\d+)/(\d+) (\d+)/(\d+)$};
is($p0 + $p1, 18000, 'the 18,000 items of the committed iterations are stored');
is($c0 + $c1, 18000, 'and counted as produced, no more');
cmp_ok(abs($p0 - $p1), '<=', 1, "spread evenly by the transaction's own estimates ($p0 / $p1)");
is($c0, $p0, 'the produced counter of each partition matches its items');
my $queue_id = sql("SELECT id FROM querator.queues WHERE name = 'loop'");
is(sql("SELECT count(*) FROM (SELECT convert_from(payload, 'UTF8') AS p FROM querator_data.q${queue_id}_p0_items"
	  . " UNION ALL SELECT convert_from(payload, 'UTF8') FROM querator_data.q${queue_id}_p1_items) AS stored"
	  . " WHERE p LIKE 'inner %' OR split_part(p, ' ', 2)::int % 10 = 0"),
	'0', 'no item of a rolled-back block is stored');

# An outer savepoint rolled back drops what its committed iterations handed up.
sql("BEGIN; SAVEPOINT outer_sp; " . sprintf($loop, 1000) . "; ROLLBACK TO SAVEPOINT outer_sp;"
	  . " SELECT querator.queue_produce('loop', 'after'); COMMIT;");
is(sql("SELECT sum(produced) FROM querator.queue_stats('loop')"), '18001',
	'iterations inside a rolled-back savepoint count nothing, the produce after it counts');
$_->quit for @waiters;
done_testing();
