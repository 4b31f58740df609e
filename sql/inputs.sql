-- Inputs that 0.1.0 accepted and that then broke the queue (issue 11, section 4):
-- unbounded durations, infinite or far-future schedule times, 2-D arrays, empty
-- encodings, lengths counted in bytes, NULL elements of per-item arrays; and what a
-- later review found: invisible characters in queue names, encoding => NULL, control
-- characters in encoding, kind, reference and client id.
-- Each refusal is 22023 naming the field and the limit, and changes nothing.

-- try_time(sql): try() with the timestamp at the end of a message masked (it depends on now()).
CREATE FUNCTION try_time(cmd text) RETURNS text LANGUAGE sql AS $$
	SELECT regexp_replace(try(cmd), 'received .*$', 'received <time>')
$$;

SELECT querator.queues_create('inp', lease_timeout => '1 minute', expire_timeout => '1 day');
SELECT querator.queues_create('inp_free');
SELECT querator.queues_create('inp_ok'); -- accepted inputs go here
SELECT querator.queue_produce('inp', ARRAY['a', 'b']::text[]) IS NOT NULL AS produced;
SELECT id AS leased_id FROM querator.queue_lease('inp', 'c', 1) \gset
SELECT querator.queue_produce('inp_free', 'x'::text) IS NOT NULL AS produced;

-- state(): the definitions and every item of the two queues; compared before and after the refusals.
CREATE FUNCTION state() RETURNS text LANGUAGE sql AS $$
	SELECT (SELECT string_agg(format('%s %s %s %s %s %s', queue_name, lease_timeout, expire_timeout, max_attempts,
	                                 partitions, updated_at), '; ' ORDER BY queue_name)
	          FROM querator.queues_list() WHERE queue_name IN ('inp', 'inp_free'))
	    || ' | ' || payloads('inp') || ' | ' || payloads('inp_free')
	    || ' | ' || (SELECT count(*) FROM querator.storage_scheduled_list('inp'))
	    || ' | ' || (SELECT count(*) FROM querator.storage_scheduled_list('inp_free'))
$$;
CREATE TEMP TABLE before AS SELECT state() AS s;

---------------------------------------------------------------- durations are bounded
-- lease_timeout: (0, 24 hours]; expire_timeout: (0, 10 years]
SELECT try($$SELECT querator.queues_create('inp_x', lease_timeout => '1000000 years')$$);
SELECT try($$SELECT querator.queues_create('inp_x', expire_timeout => '178000000 years')$$);
SELECT try($$SELECT querator.queues_create('inp_x', lease_timeout => '24:00:00.000001')$$);
SELECT try($$SELECT querator.queues_create('inp_x', expire_timeout => '10 years 1 second')$$);
SELECT try($$SELECT querator.queues_update('inp', lease_timeout => '2 days')$$);
SELECT try($$SELECT querator.queues_update('inp', expire_timeout => '11 years')$$);
SELECT try($$SELECT querator.queues_update('inp_free', expire_timeout => '178000000 years')$$);
-- a part may not be negative: added to a time, '1 mon -29 days' can go backwards
SELECT try($$SELECT querator.queues_create('inp_x', lease_timeout => '1 day -1 hour')$$);
SELECT try($$SELECT querator.queues_create('inp_x', expire_timeout => '1 mon -29 days')$$);
SELECT try($$SELECT querator.queues_update('inp', lease_timeout => '1 day -1 second')$$);
-- queue_extend and the wait of queue_lease go through the same checks
SELECT try(format('SELECT querator.queue_extend(%L, %s, %L)', 'inp', :leased_id, '25 hours'));
SELECT try(format('SELECT querator.queue_extend(%L, %s, %L)', 'inp', :leased_id, '1000000 years'));
SELECT try(format('SELECT querator.queue_extend(%L, %s, %L)', 'inp', :leased_id, '1 day -1 minute'));
SELECT try($$SELECT * FROM querator.queue_lease('inp', 'w', 1, wait => '16 minutes')$$);
SELECT try($$SELECT * FROM querator.queue_lease('inp', 'w', 1, wait => '1 mon -30 days 1 second')$$);
-- webhook durations: timeout (0, 1 hour], backoff and backoff max (0, 24 hours]
SELECT try($$SELECT querator.queues_create('inp_x', webhook_timeout => '2 hours')$$);
SELECT try($$SELECT querator.queues_create('inp_x', webhook_backoff => '1000000 years')$$);
SELECT try($$SELECT querator.queues_create('inp_x', webhook_backoff_max => '25 hours')$$);
SELECT try($$SELECT querator.queues_update('inp', webhook_backoff_max => '178000000 years')$$);
SELECT state() = (SELECT s FROM before) AS unchanged;

-- the limits themselves are fine, and every deadline computed from them is in range
SELECT querator.queues_create('inp_max', lease_timeout => '1 day', expire_timeout => '10 years',
                              webhook_backoff => '1 day', webhook_backoff_max => '24 hours');
SELECT querator.queues_update('inp_max', expire_timeout => '120 mons');
SELECT querator.queue_produce('inp_max', 'm'::text, enqueue_at => now() + interval '1 hour') IS NOT NULL AS scheduled;
SELECT querator.queue_produce('inp_max', 'n'::text) IS NOT NULL AS produced;
SELECT convert_from(payload, 'UTF8') AS payload, lease_deadline > now() + interval '23 hours' AS a_day_ahead
  FROM querator.queue_lease('inp_max', 'c', 10);
SELECT querator.queue_extend('inp_max', ARRAY(SELECT id FROM querator.storage_items_list('inp_max')), '1 day') AS extended;
SELECT expire_deadline > now() + interval '9 years' AS ten_years_ahead FROM querator.storage_items_list('inp_max');
SELECT querator.queues_delete('inp_max', true);

---------------------------------------------------------------- schedule times
-- +infinity would never be delivered; -infinity still means now
SELECT try($$SELECT querator.queue_produce('inp', 'x'::text, enqueue_at => 'infinity')$$);
SELECT try($$SELECT querator.queue_produce('inp', ARRAY['x']::text[], enqueue_at => 'infinity')$$);
SELECT try(format('SELECT querator.queue_retry(%L, %s, retry_at => %L)', 'inp', :leased_id, 'infinity'));
-- at most 10 years ahead
SELECT try($$SELECT querator.queue_produce('inp_free', 'x'::text, enqueue_at => '3000-01-01')$$);
SELECT try_time($$SELECT querator.queue_produce('inp_free', 'x'::text, enqueue_at => now() + interval '10 years 1 day')$$);
SELECT try(format('SELECT querator.queue_retry(%L, %s, retry_at => %L)', 'inp', :leased_id, '3000-01-01'));
-- and, for a queue with an expire timeout, before the items expire (they would be dead before due)
SELECT try_time($$SELECT querator.queue_produce('inp', 'x'::text, enqueue_at => now() + interval '1 day')$$);
SELECT try_time($$SELECT querator.queue_produce('inp', 'x'::text, enqueue_at => now() + interval '2 days')$$);
SELECT state() = (SELECT s FROM before) AS unchanged;
-- within the bounds: scheduled; -infinity: ready at once
SELECT try($$SELECT querator.queue_produce('inp', 's'::text, enqueue_at => now() + interval '23 hours')$$);
SELECT try($$SELECT querator.queue_produce('inp_free', 's'::text, enqueue_at => now() + interval '9 years')$$);
SELECT try($$SELECT querator.queue_produce('inp', 'r'::text, enqueue_at => '-infinity')$$);
SELECT payloads('inp') AS inp, (SELECT count(*) FROM querator.storage_scheduled_list('inp')) AS scheduled;
SELECT count(*) AS leased FROM querator.queue_lease('inp', 'c2', 10);
SELECT querator.queue_retry('inp', ARRAY(SELECT id FROM querator.storage_items_list('inp') WHERE leased),
                            retry_at => '-infinity') AS retried_now;
SELECT payloads('inp') AS inp;
SELECT querator.queue_clear('inp', queue => true, scheduled => true);
SELECT querator.queue_clear('inp_free', queue => true, scheduled => true);
SELECT querator.queue_produce('inp', ARRAY['a', 'b']::text[]) IS NOT NULL AS produced;
SELECT id AS leased_id FROM querator.queue_lease('inp', 'c', 1) \gset
SELECT querator.queue_produce('inp_free', 'x'::text) IS NOT NULL AS produced;
DROP TABLE before;
CREATE TEMP TABLE before AS SELECT state() AS s;

---------------------------------------------------------------- arrays are one-dimensional
SELECT try($$SELECT querator.queue_produce('inp', ARRAY[['a', 'b'], ['c', 'd']]::text[])$$);
SELECT try($$SELECT querator.queue_produce('inp', ARRAY[['\x01'::bytea], ['\x02'::bytea]])$$);
SELECT try($$SELECT querator.queue_produce('inp', ARRAY[['{}'::jsonb, '[]'::jsonb]])$$);
SELECT try($$SELECT querator.queue_produce('inp', ARRAY['a', 'b']::text[], kinds => ARRAY[['k', 'l']])$$);
SELECT try($$SELECT querator.queue_produce('inp', ARRAY['a']::text[], item_references => ARRAY[['r']])$$);
SELECT try(format('SELECT querator.queue_complete(%L, ARRAY[[%s]]::bigint[])', 'inp', :leased_id));
SELECT try(format('SELECT querator.queue_retry(%L, ARRAY[[%s]]::bigint[])', 'inp', :leased_id));
SELECT try(format('SELECT querator.queue_extend(%L, ARRAY[[%s]]::bigint[])', 'inp', :leased_id));
SELECT try(format('SELECT querator.queue_redrive(%L, ARRAY[[%s]]::bigint[])', 'inp', :leased_id));
SELECT state() = (SELECT s FROM before) AS unchanged;
-- a 1-D array with other bounds is still one item per element, in order
SELECT cardinality(querator.queue_produce('inp_ok', '[3:4]={p,q}'::text[], kinds => '[0:1]={k1,k2}'::text[])) AS produced;
SELECT convert_from(payload, 'UTF8') AS payload, kind, encoding FROM querator.storage_items_list('inp_ok') ORDER BY id;
-- text and jsonb payloads are stored as their UTF-8 bytes, as before
SELECT cardinality(querator.queue_produce('inp_ok', ARRAY['é', '{"a": [1, 2]}']::text[])) AS produced;
SELECT cardinality(querator.queue_produce('inp_ok', ARRAY['{"b":"ü"}'::jsonb])) AS produced;
SELECT encode(payload, 'hex') AS bytes, convert_from(payload, 'UTF8') AS payload, encoding
  FROM querator.storage_items_list('inp_ok') ORDER BY id OFFSET 2;
SELECT try($$SELECT querator.queue_produce('inp_ok', ARRAY['a', NULL]::text[])$$);
SELECT try($$SELECT querator.queue_produce('inp_ok', ARRAY[]::jsonb[])$$);
SELECT querator.queue_clear('inp_ok');

---------------------------------------------------------------- encoding and NULL elements
-- encoding names the payload's media type: it cannot be empty
SELECT try($$SELECT querator.queue_produce('inp', 'x'::text, encoding => '')$$);
SELECT try($$SELECT querator.queue_produce('inp', ARRAY['x']::text[], encoding => '  ')$$);
SELECT state() = (SELECT s FROM before) AS unchanged;
-- a NULL element of kinds or item_references means '', like a NULL array
SELECT cardinality(querator.queue_produce('inp_ok', ARRAY['a', 'b']::text[], kinds => ARRAY[NULL, 'k'],
                                          item_references => ARRAY['r', NULL])) AS produced;
SELECT convert_from(payload, 'UTF8') AS payload, kind = '' AS no_kind, reference = '' AS no_reference
  FROM querator.storage_items_list('inp_ok') ORDER BY id;
SELECT querator.queue_clear('inp_ok');

---------------------------------------------------------------- lengths count characters
-- 'é' is 2 bytes in UTF-8: the limits (512 for names, 1024 for texts) are characters
SELECT try(format('SELECT querator.queues_create(%L)', repeat('é', 512)));
SELECT try(format('SELECT querator.queues_create(%L)', repeat('é', 513)));
SELECT try(format('SELECT querator.queues_delete(%L)', repeat('é', 512)));
SELECT try(format('SELECT querator.queue_produce(%L, %L::text, kind => %L, reference => %L, encoding => %L)',
                  'inp_ok', 'x', repeat('é', 1024), repeat('ü', 1024), repeat('ö', 1024)));
SELECT try(format('SELECT querator.queue_produce(%L, ARRAY[%L]::text[], kinds => ARRAY[%L])',
                  'inp_ok', 'x', repeat('é', 1025)));
SELECT try(format('SELECT querator.queue_produce(%L, ARRAY[%L]::text[], item_references => ARRAY[%L])',
                  'inp_ok', 'x', repeat('é', 1025)));
SELECT try(format('SELECT querator.queue_produce(%L, %L::text, encoding => %L)', 'inp_ok', 'x', repeat('é', 1025)));
SELECT length(kind) AS kind, length(reference) AS reference, length(encoding) AS encoding
  FROM querator.storage_items_list('inp_ok');
SELECT try(format('SELECT count(*) FROM querator.queue_lease(%L, %L)', 'inp_ok', repeat('日', 1024)));
SELECT try(format('SELECT count(*) FROM querator.queue_lease(%L, %L)', 'inp_ok', repeat('日', 1025)));
SELECT try(format('SELECT querator.queues_update(%L, reference => %L)', 'inp_ok', repeat('é', 1025)));
SELECT querator.queue_clear('inp_ok', destructive => true);
SELECT state() = (SELECT s FROM before) AS unchanged;

---------------------------------------------------------------- queue names: no Unicode whitespace or invisible characters
-- a name with one looks like another name, or like nothing: refused when a queue is created
SELECT try(format('SELECT querator.queues_create(%L)', n)) AS result
  FROM (VALUES (E'a\u00a0b'), (E'a\u200bb'), (E'\u200b'), (E'a\u1680b'), (E'a\u2000b'), (E'a\u200fb'),
               (E'a\u2028b'), (E'a\u2029b'), (E'a\u202eb'), (E'a\u202fb'), (E'a\u205fb'), (E'a\u2060b'),
               (E'a\u3000b'), (E'\ufeffa'), (E'a\u0085b')) AS t(n);
SELECT count(*) AS created FROM querator.queues WHERE name ~ '^a.b$|^.a$|^.$';
-- visible letters of any script are fine
SELECT try($$SELECT querator.queues_create('inp_café_日本')$$);
SELECT try($$SELECT querator.queues_delete('inp_café_日本')$$);

---------------------------------------------------------------- encoding => NULL is the form's default
-- application/octet-stream for bytea, text/plain for text, application/json for jsonb
SELECT cardinality(querator.queue_produce('inp_ok', ARRAY['\x01'::bytea], encoding => NULL)) AS bytea_array;
SELECT cardinality(querator.queue_produce('inp_ok', ARRAY['t']::text[], encoding => NULL)) AS text_array;
SELECT cardinality(querator.queue_produce('inp_ok', ARRAY['{"j": 1}']::jsonb[], encoding => NULL)) AS jsonb_array;
SELECT querator.queue_produce('inp_ok', '\x02'::bytea, encoding => NULL) IS NOT NULL AS bytea_single;
SELECT querator.queue_produce('inp_ok', 's'::text, encoding => NULL) IS NOT NULL AS text_single;
SELECT querator.queue_produce('inp_ok', '{"s": 1}'::jsonb, encoding => NULL) IS NOT NULL AS jsonb_single;
SELECT convert_from(payload, 'UTF8') AS payload, encoding FROM querator.storage_items_list('inp_ok') ORDER BY id;
SELECT querator.queue_clear('inp_ok', destructive => true);

---------------------------------------------------------------- no control characters in encoding, kind, reference, client id
-- (0x00-0x1F, 0x7F): kinds and references travel in webhook headers, every one in listings and logs
SELECT try($$SELECT querator.queue_produce('inp', 'x'::text, encoding => E'text/plain\n')$$);
SELECT try($$SELECT querator.queue_produce('inp', ARRAY['x']::text[], encoding => E'text/plain\r\nX-A: b')$$);
SELECT try($$SELECT querator.queue_produce('inp', 'x'::text, kind => E'k\r\nX-Injected: 1')$$);
SELECT try($$SELECT querator.queue_produce('inp', 'x'::text, reference => E'r\t1')$$);
SELECT try($$SELECT querator.queue_produce('inp', ARRAY['x', 'y']::text[], kinds => ARRAY['k', E'k\x7f'])$$);
SELECT try($$SELECT querator.queue_produce('inp', ARRAY['x', 'y']::text[], item_references => ARRAY[E'\x01', 'r'])$$);
SELECT try($$SELECT count(*) FROM querator.queue_lease('inp', E'client\n1')$$);
SELECT try($$SELECT querator.queues_update('inp', reference => E'a\nb')$$);
SELECT try($$SELECT querator.queues_create('inp_ctl', reference => E'a\nb')$$);
SELECT state() = (SELECT s FROM before) AS unchanged;

SELECT querator.queues_delete('inp', true);
SELECT querator.queues_delete('inp_free', true);
SELECT querator.queues_delete('inp_ok', true);
DROP FUNCTION state();
DROP FUNCTION try_time(text);
