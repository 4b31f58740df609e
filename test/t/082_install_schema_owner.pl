# CREATE EXTENSION querator installs into a schema querator that already
# exists. A database owner (no superuser) who creates that schema first, or
# leaves objects or a CREATE grant in it, could place an overload such as
# querator.queue_complete(text, integer) that captures a superuser's calls.
# Install and ALTER EXTENSION UPDATE refuse such a schema; a schema that is the
# extension owner's alone is fine.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('install_schema_owner');
my $db = 'owned';
sub sql { my ($sql, $as) = @_; return $node->safe_psql($db, ($as ? "SET ROLE $as; " : '') . $sql); }
# stderr of a statement expected to fail (its exit code must be non-zero)
sub fails
{
	my ($sql, $as) = @_;
	my ($ret, $stdout, $stderr) =
	  $node->psql($db, "\\set VERBOSITY verbose\n" . ($as ? "SET ROLE $as;\n" : '') . $sql);
	return $ret != 0 ? $stderr : "(succeeded) $stdout";
}
sub installed { return sql("SELECT count(*) FROM pg_extension WHERE extname = 'querator'"); }

my $superuser = $node->safe_psql('postgres', 'SELECT current_user');
$node->safe_psql('postgres', 'CREATE ROLE dbowner LOGIN');
$node->safe_psql('postgres', "CREATE DATABASE $db OWNER dbowner");

# The database owner prepares the schema, with an overload that would capture calls.
my $capture = q{CREATE FUNCTION querator.queue_complete(queue_name text, id integer) RETURNS integer
	LANGUAGE sql AS 'SELECT 0'};
sql("CREATE SCHEMA querator; $capture", 'dbowner');
like(fails('CREATE EXTENSION querator'),
	qr/ERROR:  55000: schema querator is owned by role dbowner, not by the extension owner \Q$superuser\E\n.*DETAIL:  .*superusers included.*\nHINT:  Make \Q$superuser\E its owner \(ALTER SCHEMA querator OWNER TO \Q$superuser\E\) or drop the schema/s,
	'CREATE EXTENSION refuses a schema querator owned by the database owner, with a hint');
is(installed(), '0', 'nothing is installed');

# Following the hint halfway: the owner changes, but what the database owner put
# there (the overload, a CREATE grant to PUBLIC) would still capture calls.
sql('GRANT CREATE ON SCHEMA querator TO PUBLIC', 'dbowner');
sql('ALTER SCHEMA querator OWNER TO ' . $superuser);
like(fails('CREATE EXTENSION querator'),
	qr/ERROR:  55000: schema querator grants CREATE to PUBLIC, not only to the extension owner/,
	'refused while another role may create in it');
sql('REVOKE CREATE ON SCHEMA querator FROM PUBLIC');
like(fails('CREATE EXTENSION querator'),
	qr/ERROR:  55000: schema querator holds objects that are not part of the extension: function (?:querator\.)?queue_complete\(text,integer\)/,
	'refused while it holds an object that is not the extension\'s, named in the error');
is(installed(), '0', 'still nothing is installed');

sql('DROP SCHEMA querator CASCADE');
sql('CREATE EXTENSION querator');
is(installed(), '1', 'after DROP SCHEMA, CREATE EXTENSION works');
is(sql("SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'querator'"), $superuser,
	'the schema is the extension owner\'s');
like(fails($capture, 'dbowner'), qr/ERROR:  42501: permission denied for schema querator/,
	'and the database owner cannot place an overload in it');

# A schema the extension owner created beforehand, empty, is fine.
sql('DROP EXTENSION querator; DROP SCHEMA IF EXISTS querator; CREATE SCHEMA querator; CREATE EXTENSION querator');
is(installed(), '1', 'a pre-created schema of the extension owner is accepted');

# ALTER EXTENSION UPDATE: a 0.1.0 installed into the database owner's schema
# (0.1.0 did not check) is refused, until the schema is the extension owner's alone.
sql('DROP EXTENSION querator; DROP SCHEMA IF EXISTS querator');
sql("CREATE SCHEMA querator; $capture", 'dbowner');
sql("CREATE EXTENSION querator VERSION '0.1.0'");
like(fails('ALTER EXTENSION querator UPDATE'), qr/ERROR:  55000: schema querator is owned by role dbowner/,
	'ALTER EXTENSION UPDATE refuses the database owner\'s schema');
is(sql("SELECT extversion FROM pg_extension WHERE extname = 'querator'"), '0.1.0', 'the extension stays at 0.1.0');
sql('ALTER SCHEMA querator OWNER TO ' . $superuser);
like(fails('ALTER EXTENSION querator UPDATE'), qr/ERROR:  55000: schema querator holds objects that are not part of the extension/,
	'and the overload left in it');
sql('DROP FUNCTION querator.queue_complete(text, integer)');
sql('ALTER EXTENSION querator UPDATE');
is(sql("SELECT extversion FROM pg_extension WHERE extname = 'querator'"), '0.6.0', 'then the update goes through (to the newest version)');

$node->stop;
done_testing();
