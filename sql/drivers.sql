-- Names for drivers that send parameters untyped (issue 18): each new name has one
-- signature, so a statement prepared with no parameter types resolves, and every
-- parameter takes the type the name declares. PREPARE without types is what such a
-- driver does (its parameters are 'unknown' until the function is chosen).
SELECT querator.queues_create('drv', lease_timeout => '1 hour');

-- The problem: the overloaded names cannot be chosen from untyped parameters.
SELECT try('PREPARE ambiguous_complete AS SELECT querator.queue_complete($1, $2)') AS overloaded_complete;

---------------------------------------------------------------- produce, untyped
PREPARE produce_json AS SELECT querator.queue_produce_json($1, $2);
PREPARE produce_text AS SELECT querator.queue_produce_text($1, $2);
PREPARE produce_bytes AS SELECT querator.queue_produce_bytes($1, $2);
PREPARE produce_bytes_as AS SELECT querator.queue_produce_bytes($1, $2, encoding => $3);
PREPARE produce_json_batch AS SELECT querator.queue_produce_json_batch($1, $2, $3, $4);
PREPARE produce_text_batch AS SELECT querator.queue_produce_text_batch($1, $2);
PREPARE produce_bytes_batch AS SELECT querator.queue_produce_bytes_batch($1, $2);
SELECT name, parameter_types FROM pg_prepared_statements ORDER BY name;

EXECUTE produce_json('drv', '{"b": 1,   "a": [1, 2.50], "s": "é\u00e9"}');
EXECUTE produce_text('drv', 'plain é');
EXECUTE produce_bytes('drv', '\x00ff');
EXECUTE produce_bytes_as('drv', '\x7b7d', 'application/vnd.example+json');
EXECUTE produce_json_batch('drv', '{"{\"x\":  1}", "[1,  2]"}', '{k1,k2}', '{r1,r2}');
EXECUTE produce_text_batch('drv', '{one,two}');
EXECUTE produce_bytes_batch('drv', '{"\\x01","\\x02"}');

-- A JSON payload comes back byte-for-byte (json keeps its text; jsonb normalises it)
-- and payload_json gives it as json; other encodings give NULL.
SELECT kind, reference, encoding, payload, querator.payload_json(payload, encoding) AS json
  FROM querator.queue_lease('drv', 'c', 20) ORDER BY id;
SELECT querator.queue_produce('drv', '{"b": 1,   "a": 2}'::jsonb) IS NOT NULL AS produced_jsonb;
SELECT querator.payload_json(payload, encoding) AS jsonb_form_normalised FROM querator.queue_lease('drv', 'c', 1);

---------------------------------------------------------------- ids, untyped
CREATE TEMP TABLE leased AS SELECT id FROM querator.storage_items_list('drv', NULL, 100) ORDER BY id;
SELECT array_agg(id ORDER BY id) AS ids FROM leased \gset
PREPARE complete_batch AS SELECT querator.queue_complete_batch($1, $2);
PREPARE retry_batch AS SELECT querator.queue_retry_batch($1, $2);
PREPARE retry_batch_dead AS SELECT querator.queue_retry_batch($1, $2, dead => $3);
PREPARE extend_batch AS SELECT querator.queue_extend_batch($1, $2, $3);
PREPARE complete_and_lease AS SELECT count(*) FROM querator.queue_complete_and_lease($1, $2, $3, $4, $5);
SELECT name, parameter_types FROM pg_prepared_statements WHERE name ~ 'batch_dead|^(complete|retry|extend)_' ORDER BY name;
SELECT (:'ids'::bigint[])[1] AS first_id, (:'ids'::bigint[])[2] AS second_id, (:'ids'::bigint[])[3] AS third_id,
       (:'ids'::bigint[])[4:] AS rest \gset
EXECUTE extend_batch('drv', :'ids', '2 hours');
EXECUTE complete_batch('drv', ARRAY[:first_id, :second_id]);
EXECUTE retry_batch_dead('drv', ARRAY[:third_id], 'true');
EXECUTE retry_batch('drv', :'rest');
SELECT count(*) AS ready_again FROM querator.storage_items_list('drv') WHERE NOT leased;
SELECT count(*) AS dead FROM querator.storage_dead_list('drv');
-- the one-call loop with untyped parameters (one signature since 0.3.0)
SELECT array_agg(id) AS batch FROM querator.queue_lease('drv', 'c', 3) \gset
EXECUTE complete_and_lease('drv', 'c', :'batch', '100', '0');
SELECT count(*) AS left_after_loop FROM querator.storage_items_list('drv');
-- empty lists act on nothing, as the old forms
EXECUTE complete_batch('drv', '{}');
EXECUTE retry_batch('drv', '{}');
EXECUTE extend_batch('drv', '{}', NULL);

---------------------------------------------------------------- bad input: the old forms' errors
SELECT try($$SELECT querator.queue_produce_json('drv', NULL)$$) AS null_json;
SELECT try($$SELECT querator.queue_produce_text('drv', NULL)$$) AS null_text;
SELECT try($$SELECT querator.queue_produce_bytes('drv', NULL)$$) AS null_bytes;
SELECT try($$SELECT querator.queue_produce_json('drv', '{"a": ')$$) AS wrong_json;
SELECT try($$SELECT querator.queue_produce_json_batch('drv', '{"{}", NULL}')$$) AS null_element;
SELECT try($$SELECT querator.queue_produce_json_batch('drv', '{}')$$) AS empty_batch;
SELECT try($$SELECT querator.queue_produce_json_batch('drv', NULL)$$) AS null_batch;
SELECT try($$SELECT querator.queue_produce_text_batch('drv', '{{a,b},{c,d}}')$$) AS two_dimensions;
SELECT try($$SELECT querator.queue_produce_bytes_batch('drv', '{"\\x01"}', kinds => '{a,b}')$$) AS kinds_count;
SELECT try($$SELECT querator.queue_produce_text('drv', 'x', encoding => NULL)$$) AS null_encoding_is_default;
SELECT try($$SELECT querator.queue_produce_bytes('drv', 'x', encoding => '')$$) AS empty_encoding;
SELECT try($$SELECT querator.queue_produce_json('no_such_queue', '{}')$$) AS unknown_queue;
SELECT try($$SELECT querator.queue_complete_batch('drv', NULL)$$) AS null_ids;
SELECT try($$SELECT querator.queue_complete_batch('drv', '{1,NULL}')$$) AS null_id;
SELECT try($$SELECT querator.queue_retry_batch('drv', NULL)$$) AS null_retry_ids;
SELECT try($$SELECT querator.queue_extend_batch('drv', '{1}', '-1 hour')$$) AS negative_extend;

---------------------------------------------------------------- payload_json
SELECT e AS encoding, querator.payload_json(convert_to('{"a": 1}', 'UTF8'), e) IS NOT NULL AS json
  FROM unnest(ARRAY['application/json', 'Application/JSON; charset=utf-8', ' application/json ',
                    'application/cloudevents+json', 'application/vnd.api+JSON;v=2',
                    'text/plain', 'application/jsonx', 'application/json-seq', '+json', 'json', '']) e;
SELECT p AS payload, querator.payload_json(p, 'application/json') AS json
  FROM unnest(ARRAY['\xff'::bytea, '\x7b00'::bytea, convert_to('not json', 'UTF8'), convert_to('{"a": ', 'UTF8'),
                    ''::bytea, convert_to(' [1, "é"] ', 'UTF8')]) p;
SELECT querator.payload_json(NULL, 'application/json') IS NULL AS null_payload,
       querator.payload_json('\x7b7d', NULL) IS NULL AS null_encoding;
-- as the lease form returns them, and with the storage lists
SELECT querator.queue_produce_json('drv', '{"z": [true, null]}') IS NOT NULL AS produced;
SELECT querator.payload_json(payload, encoding) AS listed
  FROM querator.storage_items_list('drv') WHERE encoding = 'application/json' AND kind = '' ORDER BY id DESC LIMIT 1;

DEALLOCATE ALL;
SELECT querator.queues_delete('drv', force => true);
