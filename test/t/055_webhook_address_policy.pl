# The webhook destination policy (src/webhook_address.cpp, pure C++) as a unit
# test: test/unit/webhook_address_test.cpp is built here and its TAP lines are
# passed on, one test per address or list checked. Delivery through it is
# tested end to end in 054_webhook_destinations.pl.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;

my $src = $ENV{QUERATOR_SRC} // '.';
my $binary = "$PostgreSQL::Test::Utils::tmp_check/webhook_address_test";
my ($out, $err) = run_command([ 'g++', '-std=c++17', '-Wall', '-Wextra', '-Werror', "-I$src/src",
	'-o', $binary, "$src/test/unit/webhook_address_test.cpp", "$src/src/webhook_address.cpp" ]);
ok(-x $binary, 'the unit test builds') or diag($err);

my ($stdout) = run_command([$binary]);
my $cases = 0;
for my $line (split /\n/, $stdout)
{
	next unless $line =~ /^(not )?ok \d+ - (.*)$/;
	ok(!defined $1, $2);
	$cases++;
}
cmp_ok($cases, '>', 50, 'every case reported');
done_testing();
