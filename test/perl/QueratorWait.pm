# Helpers shared by the long-poll TAP tests (test/t/04*_wait_*.pl): psql sessions
# that run one query in the background, and the checks around a waiting lease.
# QueratorWait::init($node, $db) first.
package QueratorWait;

use strict;
use warnings;

use Exporter 'import';
use Test::More;
use Time::HiRes qw(usleep time);
use QueratorTap;

our @EXPORT = qw(session send_query query_done collect is_waiting lease_sql);

our ($node, $db);

sub init { ($node, $db) = @_; return; }

# A psql session that keeps going after errors, prints SQLSTATEs, knows its backend pid.
sub session
{
	my $s = $node->background_psql($db, on_error_stop => 0);
	$s->query_safe('\set VERBOSITY verbose');
	$s->{backend_pid} = $s->query_safe('SELECT pg_backend_pid()');
	return $s;
}

# Sends $sql without waiting for its result.
sub send_query
{
	my ($s, $sql) = @_;
	my $banner = 'async_done_' . ++$s->{async_n};
	$s->{stdout} = '';
	$s->{stderr} = '';
	$s->{async_banner} = $banner;
	$s->{stdin} .= "$sql;\n\\echo '$banner'\n\\warn '$banner'\n";
	$s->{run}->pump_nb;
	$s->{sent_at} = time;
	return;
}

# True once the query sent last has finished (or psql has ended).
sub query_done
{
	my ($s) = @_;
	return 1 if $s->{ended};
	eval { $s->{run}->pump_nb; 1 } or do { $s->{ended} = 1; return 1 };
	my $b = $s->{async_banner};
	return $s->{stdout} =~ /$b\n/ && $s->{stderr} =~ /$b\n/;
}

# Waits at most $timeout_s for the query sent last; returns (stdout, stderr,
# seconds since it was sent, perl time it was seen done), or () on timeout.
sub collect
{
	my ($s, $timeout_s) = @_;
	my $deadline = time + $timeout_s;
	while (time < $deadline)
	{
		if (query_done($s))
		{
			my $now = time;
			my $b = $s->{async_banner};
			my ($out, $err) = ($s->{stdout}, $s->{stderr});
			$out =~ s/\n?$b\n//;
			$err =~ s/\n?$b\n//;
			$s->{stdout} = '';
			$s->{stderr} = '';
			return ($out, $err, $now - $s->{sent_at}, $now);
		}
		usleep(2_000);
	}
	diag("query still running after ${timeout_s}s");
	return ();
}

# True once the session's backend sleeps in querator's wait (WaitLatch, PG_WAIT_EXTENSION).
sub is_waiting
{
	my ($s, $timeout_s) = @_;
	return defined poll_until($node, $db,
		"SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity WHERE pid = $s->{backend_pid}",
		'Extension/Extension', $timeout_s // 10, 20);
}

sub lease_sql
{
	my ($queue, $client, $batch, $wait) = @_;
	return "SELECT count(*) || ':' || coalesce(string_agg(convert_from(payload, 'UTF8'), ',' ORDER BY id), '')"
	  . " FROM querator.queue_lease('$queue', '$client', $batch, '$wait')";
}

1;
