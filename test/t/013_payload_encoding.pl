# queue_produce's text and jsonb forms store the UTF-8 bytes of each payload, as
# convert_to(p, 'UTF8') gives, whatever the database encoding: in a UTF-8
# database the text[] form relabels the array and the jsonb[] form renders each
# element straight into its bytea (items_api.cpp, payloads_as_bytea); in a LATIN1
# database both convert. The single forms go through the array forms.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use QueratorTap;

my $node = querator_node('payload_encoding', '');
$node->safe_psql('postgres',
	"CREATE DATABASE latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");

for my $db ('postgres', 'latin1')
{
	# U+00E9 is in both encodings; psql sends it as UTF-8 and the server converts.
	$node->safe_psql($db, q{
SET client_encoding = 'UTF8';
CREATE EXTENSION querator;
SELECT querator.queues_create('enc');
SELECT querator.queue_produce('enc', ARRAY['caf' || chr(233), 'plain']::text[]);
SELECT querator.queue_produce('enc', ARRAY[jsonb_build_object('drink', 'caf' || chr(233)), '[1, 2.50, "x"]']::jsonb[]);
SELECT querator.queue_produce('enc', 'single ' || chr(233));
SELECT querator.queue_produce('enc', jsonb_build_object('single', chr(233)));
});
	is($node->safe_psql($db, q{
SELECT string_agg(encoding || ' ' || encode(payload, 'hex'), ', ' ORDER BY id)
  FROM querator.queue_lease('enc', 'c', 10)}),
		'text/plain 636166c3a9, text/plain 706c61696e, '
		  . 'application/json 7b226472696e6b223a2022636166c3a9227d, application/json 5b312c20322e35302c202278225d, '
		  . 'text/plain 73696e676c6520c3a9, application/json 7b2273696e676c65223a2022c3a9227d',
		"$db: the UTF-8 bytes of each payload, jsonb as jsonb prints it");
	like($node->psql($db, q{SELECT querator.queue_produce('enc', ARRAY['a', NULL]::text[])}, stderr => \my $stderr) // '', qr/^\d*$/, "$db: a NULL element is refused");
	like($stderr, qr/items is invalid; payload of item 2 is null/, "$db: with the item named");
}

$node->stop;
done_testing();
