# The webhook client's descriptor accounting (src/webhook_http.cpp, pure C++)
# as a unit test against a loopback sink: test/unit/webhook_descriptors_test.cpp
# is built here and its TAP lines are passed on. Delivery under PostgreSQL's
# own accounting is tested end to end in 056_webhook_descriptors.pl.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use WebhookSink;

my $src = $ENV{QUERATOR_SRC} // '.';
my $binary = "$PostgreSQL::Test::Utils::tmp_check/webhook_descriptors_test";
my ($out, $err) = run_command([ 'g++', '-std=c++17', '-Wall', '-Wextra', '-Werror', "-I$src/src",
	'-o', $binary, "$src/test/unit/webhook_descriptors_test.cpp", "$src/src/webhook_http.cpp",
	"$src/src/webhook_address.cpp", '-lcurl' ]);
ok(-x $binary, 'the unit test builds') or diag($err);

my $sink = start_sink();
my ($stdout, $stderr) = run_command([ $binary, sink_url($sink, ''), "http://localhost:$sink->{port}" ]);
my $cases = 0;
for my $line (split /\n/, $stdout)
{
	next unless $line =~ /^(not )?ok \d+ - (.*)$/;
	ok(!defined $1, $2);
	$cases++;
}
is($cases, 11, 'every case reported') or diag($stderr);
stop_sink($sink);
done_testing();
