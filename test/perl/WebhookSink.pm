# The loopback HTTP receiver of the webhook tests (test/http_sink.py): start,
# stop, and the requests it recorded; sink_conf(), the node setting that lets
# webhooks reach it (loopback is refused unless querator.webhook_allowed_cidrs
# lists it); a node short of descriptors for the delivery tests under pressure.
package WebhookSink;

use strict;
use warnings;

use QueratorTap;
use Exporter 'import';
use File::Temp qw(tempdir);
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(free_port start_sink stop_sink sink_requests sink_url sink_conf sink_got_each_once
  descriptor_limited_node descriptor_limited_restart);

my $src = $ENV{QUERATOR_SRC} // '.';

# postgresql.conf lines for a node whose webhooks deliver to a sink (127.0.0.1 only).
sub sink_conf
{
	return "querator.webhook_allowed_cidrs = '127.0.0.1/32'\n";
}

# A loopback port nothing listens on right now.
sub free_port
{
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 1)
	  or die "no free port: $!";
	my $port = $s->sockport;
	close $s;
	return $port;
}

# Starts the sink (on $port, or a free one); returns a handle once it listens.
sub start_sink
{
	my (%opt) = @_;
	my $dir = $opt{dir} // tempdir(DIR => $PostgreSQL::Test::Utils::tmp_check, CLEANUP => 1);
	my $log = "$dir/requests.jsonl";
	my $port_file = "$dir/port";
	unlink $port_file;
	my $h = IPC::Run::start(
		[ 'python3', "$src/test/http_sink.py", '--port', $opt{port} // 0, '--log', $log, '--port-file', $port_file ],
		'<', \undef, '>', "$dir/sink.out", '2>', "$dir/sink.err");
	my $start = time;
	while (!-s $port_file)
	{
		die "http sink did not start: " . slurp_file("$dir/sink.err") if time - $start > 10;
		usleep(20_000);
	}
	my $port = slurp_file($port_file);
	return { handle => $h, log => $log, port => $port + 0, dir => $dir };
}

sub stop_sink
{
	my ($sink) = @_;
	$sink->{handle}->kill_kill;
	$sink->{handle}->finish;
}

sub sink_url
{
	my ($sink_or_port, $path) = @_;
	my $port = ref $sink_or_port ? $sink_or_port->{port} : $sink_or_port;
	return "http://127.0.0.1:$port$path";
}

# Every request recorded so far: hashes with time, path, headers (names lower-cased), body.
sub sink_requests
{
	my ($sink) = @_;
	return () unless -e $sink->{log};
	my @requests;
	open my $fh, '<', $sink->{log} or die $!;
	while (my $line = <$fh>)
	{
		next unless $line =~ /\n\z/; # a line still being written
		my $r = decode_json($line);
		my %h = map { lc($_) => $r->{headers}{$_} } keys %{ $r->{headers} };
		$r->{headers} = \%h;
		push @requests, $r;
	}
	close $fh;
	return @requests;
}

# Three checks: the sink received $items distinct bodies, each once, every one on its first attempt.
sub sink_got_each_once
{
	my ($sink, $items) = @_;
	my @requests = sink_requests($sink);
	my %bodies = map { $_->{body} => 1 } @requests;
	is(scalar keys %bodies, $items, 'every item arrived');
	is(scalar @requests, $items, 'each once');
	is(scalar(grep { ($_->{headers}{'x-querator-attempt'} // '') ne '1' } @requests), 0,
		'every request was a first attempt');
}

# A node whose worker is as short of descriptors as under the usual limits
# (max_files_per_process 1,000 under a soft limit of 1,024), at a tenth of
# them: max_files_per_process = 100 under a soft limit of 124 (the server
# inherits the limit at each start), and sink_conf's webhook settings.
our $descriptor_soft_limit = 124;
our $descriptor_max_files = 100;

sub descriptor_limited_node
{
	my ($name) = @_;
	return with_soft_nofile($descriptor_soft_limit, sub {
		querator_node($name, sink_conf() . "max_files_per_process = $descriptor_max_files\nlog_statement = none\n");
	});
}

sub descriptor_limited_restart
{
	my ($node) = @_;
	with_soft_nofile($descriptor_soft_limit, sub { $node->restart; });
}

1;
