# querator serves at most 64 databases per server, and every connectable
# database takes a slot when the launcher first looks at it. A CREATE
# EXTENSION in a database that finds every slot taken says so before its
# commit, and its commit callback (where even a WARNING is unsafe) only
# records it: the launcher logs it. Disallowing connections to another
# database frees a slot, and the database is then served.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use QueratorTap;

my $node = querator_node('database_slots', "log_line_prefix = '%m [%p] %b '\n");
$node->safe_psql('postgres', 'CREATE EXTENSION querator');

# postgres and 64 more: 65 connectable databases for 64 slots. The launcher
# takes slots as it finds databases (every second), so the last one made has none.
$node->safe_psql('postgres', join '', map { sprintf "CREATE DATABASE db_%02d STRATEGY FILE_COPY;\n", $_ } 1 .. 64);
my $last = 'db_64';

my $warning = qr/WARNING:  querator serves at most 64 databases per server: this one will have no worker/;
# Once the launcher has looked at every database, a CREATE EXTENSION in the last finds no slot.
my $warned = 0;
for (1 .. 100)
{
	my (undef, undef, $stderr) = $node->psql($last, 'BEGIN; CREATE EXTENSION querator; ROLLBACK;');
	$warned = $stderr =~ $warning;
	last if $warned;
	sleep 0.2;
}
ok($warned, "the launcher looked at every database: $last finds every slot taken");

my $log_offset = -s $node->logfile;
my ($ret, $stdout, $stderr) = $node->psql($last, 'CREATE EXTENSION querator');
is($ret, 0, 'CREATE EXTENSION succeeds');
like($stderr, $warning, 'and warns before its commit');
my @warnings = $stderr =~ /WARNING/g;
is(scalar @warnings, 1, 'once: its commit callback reports nothing');
ok(wait_for_log($node,
	qr/ querator launcher WARNING:  querator launcher: database "$last" has no querator worker: all 64 database slots are taken/,
	$log_offset), 'the launcher logs the request that found no slot');

# A database that does not use querator gives its slot away.
$node->safe_psql('postgres', 'ALTER DATABASE db_01 ALLOW_CONNECTIONS false');
ok(wait_for_workers($node, $last, 1, 30), "$last is served once db_01 no longer takes a slot");

done_testing();

# Polls the server log from $offset for $re, for at most 10 s.
sub wait_for_log
{
	my ($node, $re, $offset) = @_;
	for (1 .. 100)
	{
		return 1 if $node->log_contains($re, $offset);
		sleep 0.1;
	}
	return 0;
}
