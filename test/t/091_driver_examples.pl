# The driver examples run as their users run them (issue 18): examples/python (psycopg2)
# and examples/node (node-postgres, installed by `npm ci` from the example's lock file),
# each with 2 producers and 3 consumer processes (2 long-polling loops each) on a queue of
# its own, JSON and binary payloads in turn, parameters untyped (no casts in their SQL).
# Consumers get SIGTERM a quarter of the way (a second round drains the rest) and once
# every item is consumed: each loop finishes and completes the batch in hand and exits 0,
# leaving nothing leased. From the ledger the processes print (produced / consumed lines):
# every produced id consumed exactly once, with the same payload bytes (a JSON payload
# comes back byte-for-byte), JSON bodies handed over parsed by the driver, and the queue
# empty with nothing leased. npm failing to install the driver fails the test: it must
# not pass without having run the Node example.
use strict;
use warnings;

use File::Copy;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use QueratorTap;

my $src = $ENV{QUERATOR_SRC} // '.';
my $producers = 2;
my $consumers = 3;
my $per_producer = 1000;
my $wait = 2; # seconds of a long poll: the longest a consumer takes to notice SIGTERM

my $node = querator_node('drivers');
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION querator');

# ------------------------------------------------------------------ the Node example's driver
my $work = PostgreSQL::Test::Utils::tempdir;
mkdir "$work/node" or die "mkdir: $!";
copy("$src/examples/node/$_", "$work/node/$_") or die "copy $_: $!"
  for qw(package.json package-lock.json producer.js consumer.js);
{
	local $ENV{HOME} = $work;
	local $ENV{npm_config_cache} = "$work/npm-cache";
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'npm', 'ci', '--no-audit', '--no-fund', '--prefix', "$work/node" ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(300));
	ok($ok, 'npm ci installs node-postgres from the lock file')
	  or BAIL_OUT("npm ci failed, so the Node example cannot run:\n$out$err");
}

my %languages = (
	python => { dir => "$src/examples/python", run => [ '/usr/bin/python3', '-u' ], ext => 'py',
		json_given => 'dict', bytes_given => 'memoryview' },
	node => { dir => "$work/node", run => ['node'], ext => 'js',
		json_given => 'object', bytes_given => 'buffer' },
);

# Starts one example program with the cluster's connection settings and $env; its
# output goes to $out.
sub start_example
{
	my ($lang, $program, $out, %env) = @_;
	my $l = $languages{$lang};
	local %ENV = (%ENV, PGHOST => $node->host, PGPORT => $node->port, PGDATABASE => $db,
		PGUSER => scalar(getpwuid($<)), %env);
	delete $ENV{PGSERVICE};
	return IPC::Run::start([ @{ $l->{run} }, "$l->{dir}/$program.$l->{ext}" ],
		'<', \undef, '>', $out, '2>', "$out.err", IPC::Run::timeout(300));
}

sub lines_of
{
	my @files = @_;
	my @lines;
	for my $f (@files)
	{
		open my $fh, '<', $f or next;
		push @lines, grep { length } map { chomp; $_ } <$fh>;
		close $fh;
	}
	return @lines;
}

for my $lang (sort keys %languages)
{
	my $l = $languages{$lang};
	my $queue = "${lang}_jobs";
	$node->safe_psql($db, "SELECT querator.queues_create('$queue', lease_timeout => '10 minutes')");
	my $expected = $producers * $per_producer;

	# Consumers in two rounds: the first gets SIGTERM a quarter of the way, while items are
	# coming in and being leased (each loop must complete the batch in hand: nothing may stay
	# leased); the second drains the rest and gets SIGTERM once all are consumed.
	my @consumer_out;
	my $start_consumers = sub {
		my ($round) = @_;
		my @runs;
		for my $c (1 .. $consumers)
		{
			my $out = "$work/$lang-consumer-$round-$c.out";
			push @consumer_out, $out;
			push @runs, start_example($lang, 'consumer', $out, QUEUE => $queue, CONSUMERS => 2,
				BATCH => 10, WAIT => "$wait seconds", CLIENT_ID => "$lang-r$round-c$c");
		}
		return @runs;
	};
	my $stop_consumers_at = sub {
		my ($round, $consumed, @runs) = @_;
		# Bounded: a stuck consumer fails the test, not hangs it.
		my $start = time;
		usleep(100_000) while scalar(lines_of(@consumer_out)) < $consumed && time - $start < 120;
		my $stop_sent = time;
		$_->signal('TERM') for @runs;
		for my $c (0 .. $#runs)
		{
			my $h = $runs[$c];
			my $ok = eval { $h->finish; 1 } && $h->result == 0;
			ok($ok, "$lang consumer $round." . ($c + 1) . ' exits 0 on SIGTERM')
			  or diag(join "\n", lines_of("$work/$lang-consumer-$round-" . ($c + 1) . '.out.err'));
		}
		# A loop notices SIGTERM when its long poll returns (at most WAIT); 30 s is far
		# beyond that and short of the lease timeout of a consumer that never stopped.
		cmp_ok(time - $stop_sent, '<', 30, "$lang consumers of round $round stop within their long poll");
		is( $node->safe_psql($db,
				"SELECT count(*) FILTER (WHERE leased) FROM querator.storage_items_list('$queue', NULL, 10000)"),
			'0', "$lang round $round: every consumer completed the batch in hand before it exited");
	};

	my @first = $start_consumers->(1);
	my @producer_out;
	my @producer_runs;
	for my $p (1 .. $producers)
	{
		my $out = "$work/$lang-producer-$p.out";
		push @producer_out, $out;
		push @producer_runs, start_example($lang, 'producer', $out, QUEUE => $queue, COUNT => $per_producer,
			BATCH => 50, PRODUCER_NAME => "$lang-p$p");
	}
	$stop_consumers_at->(1, $expected / 4, @first);
	cmp_ok(scalar(lines_of(@consumer_out)), '<', $expected, "$lang: the first round stopped with items left");
	for my $p (0 .. $#producer_runs)
	{
		my $h = $producer_runs[$p];
		my $ok = eval { $h->finish; 1 } && $h->result == 0;
		ok($ok, "$lang producer " . ($p + 1) . ' exits 0')
		  or diag(join "\n", lines_of("$producer_out[$p].err"));
	}
	$stop_consumers_at->(2, $expected, $start_consumers->(2));

	# ------------------------------------------------------------------ the ledger
	my %produced;
	for (lines_of(@producer_out))
	{
		my (undef, $id, $kind, $md5) = split / /;
		$produced{$id} = { kind => $kind, md5 => $md5 };
	}
	is(scalar(keys %produced), $expected, "$lang: $expected distinct ids produced");
	my (%seen, @twice, @wrong_bytes, @wrong_form);
	for (lines_of(@consumer_out))
	{
		my ($word, $id, $kind, $md5, $given) = split / /;
		push @twice, $id if $seen{$id}++;
		my $p = $produced{$id} // { kind => '?', md5 => '?' };
		push @wrong_bytes, "$id ($kind)" if $p->{md5} ne $md5 || $p->{kind} ne $kind;
		my $want = $kind eq 'json' ? $l->{json_given} : $l->{bytes_given};
		push @wrong_form, "$id: $kind given as $given" if $given ne $want;
	}
	my @missing = grep { !$seen{$_} } sort keys %produced;
	my @unknown = grep { !$produced{$_} } sort keys %seen;
	is(scalar(@missing), 0, "$lang: every produced id consumed") or diag("missing: @missing[0 .. 9]");
	is(scalar(@twice), 0, "$lang: no id consumed twice") or diag("twice: @twice[0 .. 9]");
	is(scalar(@unknown), 0, "$lang: no id consumed that was not produced") or diag("unknown: @unknown");
	is(scalar(@wrong_bytes), 0, "$lang: every payload comes back byte-for-byte (JSON included)")
	  or diag("differ: @wrong_bytes[0 .. 9]");
	is(scalar(@wrong_form), 0, "$lang: JSON bodies come parsed by the driver, the rest as bytes")
	  or diag("@wrong_form[0 .. 9]");
	is( $node->safe_psql(
			$db, "SELECT (SELECT count(*) FROM querator.storage_items_list('$queue', NULL, 10000))
			         || ' ' || (SELECT count(*) FROM querator.storage_scheduled_list('$queue', NULL, 10000))
			         || ' ' || (SELECT count(*) FROM querator.storage_dead_list('$queue', NULL, 10000))"),
		'0 0 0',
		"$lang: the queue is empty after the shutdown: nothing ready, leased, scheduled or dead");
}

$node->stop;
done_testing();
