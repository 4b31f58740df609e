-- Operations from psql: queue_stats and the stats view, pause/resume, queue_clear,
-- queue_redrive, payload_preview in the storage lists.
-- Lease timeouts are long (1 hour) so the background worker never moves anything here;
-- the counters are per queue and start at zero, so every value below is deterministic.
\pset null '<null>'

---------------------------------------------------------------- queue_stats
SELECT querator.queues_create('ops', lease_timeout => '1 hour');
-- an empty queue: one row per partition, zeros, no ages
SELECT * FROM querator.queue_stats('ops');

SELECT querator.queue_produce('ops', ARRAY['a', 'b', 'c', 'd', 'e']::text[]) AS ids;
SELECT querator.queue_produce('ops', ARRAY['s1', 's2']::text[], enqueue_at => now() + interval '1 day') AS ids;
SELECT id, convert_from(payload, 'UTF8') AS payload FROM querator.queue_lease('ops', 'w1', 3);
SELECT querator.queue_complete('ops', 1);
SELECT querator.queue_retry('ops', 2);
SELECT querator.queue_retry('ops', 3, dead => true);
-- now: ready d, e, b (requeued); leased none; scheduled s1, s2; dead c
SELECT queue_name, partition, total, total_leased, scheduled, dead,
       oldest_age IS NOT NULL AS has_oldest_age, average_age IS NOT NULL AS has_average_age,
       average_lease_remaining, paused,
       produced, leased, completed, retried, lease_expired, dead_lettered, expired
  FROM querator.queue_stats('ops');
-- a leased item: total counts ready items including leased ones (Querator's meaning), total_leased the leased ones
SELECT id, convert_from(payload, 'UTF8') AS payload FROM querator.queue_lease('ops', 'w1', 1);
SELECT total, total_leased, scheduled, dead, leased,
       average_lease_remaining > interval '59 minutes' AS lease_remaining_about_1h,
       oldest_age >= average_age AS oldest_not_younger_than_average
  FROM querator.queue_stats('ops');
-- a rolled-back call counts nothing
BEGIN;
SELECT querator.queue_produce('ops', 'rolled back'::text) AS id;
ROLLBACK;
SELECT total, produced FROM querator.queue_stats('ops');

-- one row per partition; counters per partition
SELECT querator.queues_create('ops_parts', lease_timeout => '1 hour', partitions => 3);
SELECT querator.queue_produce('ops_parts', ARRAY['x', 'y']::text[]) IS NOT NULL AS produced;
SELECT partition, paused FROM querator.queue_stats('ops_parts') ORDER BY partition;
SELECT sum(total) AS total, sum(produced) AS produced, count(*) AS partitions
  FROM querator.queue_stats('ops_parts');

-- the column list, as a monitoring query sees it
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'querator.stats'::regclass AND attnum > 0 ORDER BY attnum;

-- the view: every visible queue, one row per partition, in queue name order
-- (which partition a produce picks is not fixed, so ops_parts is summed)
SELECT queue_name, partition, total, total_leased, scheduled, dead, produced
  FROM querator.stats WHERE queue_name = 'ops';
SELECT queue_name, count(*) AS partitions, sum(total) AS total, sum(produced) AS produced
  FROM querator.stats WHERE queue_name LIKE 'ops%' GROUP BY queue_name ORDER BY queue_name;

-- errors
SELECT try('SELECT * FROM querator.queue_stats(''no_such_queue'')');
SELECT try('SELECT * FROM querator.queue_stats('''')');
SELECT try('SELECT * FROM querator.queue_stats(NULL)');

---------------------------------------------------------------- pause / resume
SELECT querator.queue_pause('ops');
SELECT querator.queue_pause('ops');   -- pausing twice is fine
SELECT queue_name, paused FROM querator.queues_info('ops');
SELECT queue_name, paused FROM querator.queues_list() WHERE queue_name LIKE 'ops%';
SELECT DISTINCT paused FROM querator.stats WHERE queue_name = 'ops';
-- produce still works; lease returns nothing, with or without wait
SELECT querator.queue_produce('ops', 'while paused'::text) AS id;
SELECT count(*) AS leased FROM querator.queue_lease('ops', 'w2', 10);
SELECT count(*) AS leased FROM querator.queue_lease('ops', 'w2', 10, wait => '0.1 seconds');
SELECT total FROM querator.queue_stats('ops');
-- leases taken before the pause can still be completed
SELECT querator.queue_complete('ops', ARRAY(SELECT id FROM querator.storage_items_list('ops') WHERE leased));
-- other queues are not affected
SELECT count(*) AS leased FROM querator.queue_lease('ops_parts', 'w2', 1);
SELECT querator.queue_resume('ops');
SELECT querator.queue_resume('ops');  -- resuming twice is fine
SELECT paused FROM querator.queues_info('ops');
SELECT string_agg(convert_from(payload, 'UTF8'), ' ' ORDER BY id) AS leased
  FROM querator.queue_lease('ops', 'w2', 10);
SELECT try('SELECT querator.queue_pause(''no_such_queue'')');
SELECT try('SELECT querator.queue_resume(''no_such_queue'')');
SELECT try('SELECT querator.queue_pause('' bad'')');

---------------------------------------------------------------- queue_clear
SELECT querator.queues_create('clr', lease_timeout => '1 hour');
-- fill(): 4 ready (one of them then leased) and 2 scheduled
CREATE FUNCTION fill_clr() RETURNS text LANGUAGE sql AS $$
	SELECT querator.queue_produce('clr', ARRAY['r1', 'r2', 'r3', 'r4']::text[]);
	SELECT querator.queue_produce('clr', ARRAY['s1', 's2']::text[], enqueue_at => now() + interval '1 day');
	SELECT count(*) FROM querator.queue_lease('clr', 'w', 1);
	SELECT payloads('clr') || ' | ' || coalesce((SELECT string_agg(convert_from(payload, 'UTF8'), ' ' ORDER BY id)
	                                             FROM querator.storage_scheduled_list('clr')), '');
$$;
SELECT fill_clr();
-- the default: ready items that are not leased
SELECT querator.queue_clear('clr') AS cleared;
SELECT payloads('clr'), (SELECT count(*) FROM querator.storage_scheduled_list('clr')) AS scheduled;
-- scheduled only
SELECT querator.queue_clear('clr', queue => false, scheduled => true) AS cleared;
SELECT payloads('clr'), (SELECT count(*) FROM querator.storage_scheduled_list('clr')) AS scheduled;
-- destructive also removes leased items
SELECT id AS leased_id FROM querator.storage_items_list('clr') WHERE leased \gset
SELECT querator.queue_clear('clr', destructive => true) AS cleared;
SELECT payloads('clr');
-- the consumer holding that lease finds its item gone
SELECT try_ids('SELECT querator.queue_complete(''clr'', ' || :leased_id || ')');
-- everything at once
SELECT fill_clr();
SELECT querator.queue_clear('clr', queue => true, scheduled => true, destructive => true) AS cleared;
SELECT total, total_leased, scheduled FROM querator.queue_stats('clr');
-- nothing selected: nothing cleared; NULL arguments mean the defaults
SELECT fill_clr();
SELECT querator.queue_clear('clr', false, false, false) AS cleared;
SELECT querator.queue_clear('clr', NULL, NULL, NULL) AS cleared;
SELECT querator.queue_clear('clr', false, true, NULL) AS cleared;
-- dead letters are not touched by clear
SELECT querator.queue_retry('clr', ARRAY(SELECT id FROM querator.storage_items_list('clr') WHERE leased), dead => true);
SELECT querator.queue_clear('clr', true, true, true) AS cleared;
SELECT count(*) AS dead FROM querator.storage_dead_list('clr');
-- a rolled-back clear changes nothing
SELECT querator.queue_produce('clr', 'kept'::text) AS id;
BEGIN;
SELECT querator.queue_clear('clr') AS cleared;
ROLLBACK;
SELECT payloads('clr');
-- cleared items can be produced again and leased normally
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.queue_lease('clr', 'w', 5);
SELECT try('SELECT querator.queue_clear(''no_such_queue'')');
SELECT querator.queues_delete('clr', force => true);
DROP FUNCTION fill_clr();

---------------------------------------------------------------- queue_redrive: the queue's own dead letters
SELECT querator.queues_create('rd', lease_timeout => '1 hour', max_attempts => 2);
SELECT querator.queue_produce('rd', ARRAY['a', 'b', 'c', 'd']::text[]) AS ids;
SELECT querator.queue_retry('rd', ARRAY(SELECT id FROM querator.queue_lease('rd', 'w', 2)), dead => true);
-- c and d reach max_attempts (2)
SELECT querator.queue_retry('rd', ARRAY(SELECT id FROM querator.queue_lease('rd', 'w', 2)));
SELECT querator.queue_retry('rd', ARRAY(SELECT id FROM querator.queue_lease('rd', 'w', 2)));
SELECT id, convert_from(payload, 'UTF8') AS payload, attempts, reason FROM querator.storage_dead_list('rd');
SELECT dead, dead_lettered FROM querator.queue_stats('rd');
-- selected ids: back to the tail of their partition with a new id and attempts 0
SELECT querator.queue_redrive('rd', ARRAY[2]) AS redriven;
SELECT id, convert_from(payload, 'UTF8') AS payload, attempts, leased FROM querator.storage_items_list('rd');
-- every id must name a dead letter (all or none, as complete): an unknown id is 42704,
-- an item of the queue that is not dead 55000, and nothing is redriven
SELECT min(id) AS dead_id FROM querator.storage_dead_list('rd') \gset
SELECT try_ids(format('SELECT querator.queue_redrive(%L, ARRAY[%s, %s])', 'rd', :dead_id, :dead_id + 1000));
SELECT try_ids(format('SELECT querator.queue_redrive(%L, ARRAY[%s, %s])', 'rd', :dead_id,
                      (SELECT min(id) FROM querator.storage_items_list('rd'))));
SELECT count(*) AS dead FROM querator.storage_dead_list('rd');
-- an empty list redrives nothing (NULL, the default, is every dead letter)
SELECT querator.queue_redrive('rd', '{}') AS redriven;
SELECT querator.queue_redrive('rd', ARRAY(SELECT id FROM querator.storage_dead_list('rd') WHERE reason = 'expired')) AS redriven;
-- dead_before: only letters that died before that time
SELECT querator.queue_redrive('rd', dead_before => now() - interval '1 hour') AS redriven;
SELECT querator.queue_redrive('rd', dead_before => now()) AS redriven;
SELECT id, convert_from(payload, 'UTF8') AS payload, attempts FROM querator.storage_items_list('rd');
SELECT count(*) AS dead FROM querator.storage_dead_list('rd');
SELECT querator.queue_redrive('rd') AS redriven;  -- nothing left
-- all: every dead letter
SELECT querator.queue_retry('rd', ARRAY(SELECT id FROM querator.queue_lease('rd', 'w', 10)), dead => true);
SELECT count(*) AS dead FROM querator.storage_dead_list('rd');
SELECT querator.queue_redrive('rd') AS redriven;
SELECT string_agg(convert_from(payload, 'UTF8') || ':' || attempts, ' ' ORDER BY id) AS items
  FROM querator.storage_items_list('rd');
SELECT total, dead FROM querator.queue_stats('rd');
-- redriven items lease like new ones
SELECT string_agg(convert_from(payload, 'UTF8') || ':' || attempts, ' ' ORDER BY id) AS leased
  FROM querator.queue_lease('rd', 'w', 10);
-- a rolled-back redrive changes nothing
SELECT querator.queue_retry('rd', ARRAY(SELECT id FROM querator.storage_items_list('rd') WHERE leased), dead => true);
BEGIN;
SELECT querator.queue_redrive('rd') AS redriven;
ROLLBACK;
SELECT count(*) AS dead FROM querator.storage_dead_list('rd');
-- errors
SELECT try('SELECT querator.queue_redrive(''no_such_queue'')');
SELECT try('SELECT querator.queue_redrive(''no_such_queue'', ''{}''::bigint[])');
SELECT try('SELECT querator.queue_redrive(''rd'', ARRAY[1, NULL]::bigint[])');
SELECT querator.queues_delete('rd', force => true);

-- partitions: a dead letter goes back to the partition it died in
SELECT querator.queues_create('rdp', lease_timeout => '1 hour', partitions => 2);
SELECT querator.queue_produce('rdp', ARRAY['p1', 'p2']::text[]) IS NOT NULL AS produced;
SELECT querator.queue_produce('rdp', ARRAY['p3']::text[]) IS NOT NULL AS produced;
SELECT partition AS p3_partition FROM querator.storage_items_list('rdp') WHERE convert_from(payload, 'UTF8') = 'p3' \gset
-- a lease takes from one partition: the one with the most items (p1 p2), then the other (p3)
SELECT querator.queue_retry('rdp', ARRAY(SELECT id FROM querator.queue_lease('rdp', 'w', 10)), dead => true);
SELECT querator.queue_retry('rdp', ARRAY(SELECT id FROM querator.queue_lease('rdp', 'w', 10)), dead => true);
SELECT (id >> 48) = partition AS id_names_partition, count(*) FROM querator.storage_dead_list('rdp') GROUP BY 1;
SELECT querator.queue_redrive('rdp') AS redriven;
SELECT partition = :p3_partition AS same_partition FROM querator.storage_items_list('rdp')
 WHERE convert_from(payload, 'UTF8') = 'p3';
SELECT bool_and((id >> 48) = partition) AS ids_name_partitions, count(*) FROM querator.storage_items_list('rdp');
SELECT querator.queues_delete('rdp', force => true);

---------------------------------------------------------------- queue_redrive: a dead queue
SELECT querator.queues_create('rd_dead', lease_timeout => '1 hour');
SELECT querator.queues_create('rd_src1', lease_timeout => '1 hour', dead_queue => 'rd_dead', max_attempts => 1);
SELECT querator.queues_create('rd_src2', lease_timeout => '1 hour', dead_queue => 'rd_dead');
SELECT querator.queue_produce('rd_src1', ARRAY['a1', 'a2']::text[]) AS ids;
SELECT querator.queue_produce('rd_src2', ARRAY['b1', 'b2']::text[]) AS ids;
SELECT querator.queue_retry('rd_src1', ARRAY(SELECT id FROM querator.queue_lease('rd_src1', 'w', 10)));
SELECT querator.queue_retry('rd_src2', ARRAY(SELECT id FROM querator.queue_lease('rd_src2', 'w', 10)), dead => true);
SELECT id, source_id, attempts, convert_from(payload, 'UTF8') AS payload FROM querator.storage_items_list('rd_dead');
SELECT queue_name, total, dead_lettered FROM querator.stats WHERE queue_name LIKE 'rd\_%' ORDER BY queue_name;
-- selected ids of the dead queue: back to their source queue
SELECT querator.queue_redrive('rd_dead', ARRAY[1]) AS redriven;
SELECT payloads('rd_dead') AS dead_queue, payloads('rd_src1') AS src1, payloads('rd_src2') AS src2;
-- a leased item of the dead queue stays there (its consumer is working on it)
SELECT convert_from(payload, 'UTF8') AS leased FROM querator.queue_lease('rd_dead', 'w', 1);
SELECT querator.queue_redrive('rd_dead', dead_before => now() - interval '1 hour') AS redriven;
SELECT querator.queue_redrive('rd_dead') AS redriven;
SELECT payloads('rd_dead') AS dead_queue, payloads('rd_src1') AS src1, payloads('rd_src2') AS src2;
SELECT convert_from(payload, 'UTF8') AS payload, attempts, source_id FROM querator.storage_items_list('rd_src2');
-- back in its source queue the item leases again
SELECT string_agg(convert_from(payload, 'UTF8') || ':' || attempts, ' ' ORDER BY id) AS leased
  FROM querator.queue_lease('rd_src2', 'w', 10);
-- an item produced into the dead queue itself is no dead letter (55000); a leased dead
-- letter is one, and is left where it is
SELECT querator.queue_produce('rd_dead', 'own'::text) AS own_id \gset
SELECT try_ids(format('SELECT querator.queue_redrive(%L, ARRAY[%s])', 'rd_dead', :own_id));
SELECT querator.queue_redrive('rd_dead', ARRAY(SELECT id FROM querator.storage_items_list('rd_dead') WHERE leased)) AS redriven;
SELECT payloads('rd_dead') AS dead_queue;
SELECT querator.queues_delete('rd_src1', force => true);
SELECT querator.queues_delete('rd_src2', force => true);
SELECT querator.queues_delete('rd_dead', force => true);

---------------------------------------------------------------- queue_tables
-- A queue's tables named from its name (the runbook's VACUUM): items, leases and scheduled
-- per partition, then the dead letters. The internal id in the names is the queue's own.
SELECT querator.queues_create('qt_other');  -- takes an id first, so qt's is not the lowest
SELECT querator.queues_create('qt', partitions => 2);
SELECT t.partition, t.kind, t.table_name::text = format('querator_data.q%s_%s', q.id,
         CASE WHEN t.kind = 'dead' THEN 'dead' ELSE format('p%s_%s', t.partition, t.kind) END) AS qt_table
  FROM querator.queue_tables('qt') t, querator.queues q WHERE q.name = 'qt';
-- (the generated statements name the internal id: not echoed)
\set ECHO none
SELECT format('VACUUM (ANALYZE) %s', table_name) FROM querator.queue_tables('qt') \gexec
\set ECHO all
SELECT count(*) FILTER (WHERE last_analyze IS NOT NULL) AS analyzed, count(*) AS tables
  FROM pg_stat_user_tables WHERE relid IN (SELECT table_name FROM querator.queue_tables('qt'));
-- who may see the queue may name its tables; who may not gets the error of a missing queue
CREATE ROLE regress_qt_worker;
CREATE ROLE regress_qt_outsider;
SELECT querator.queue_grant('qt', 'regress_qt_worker', 'consume');
SELECT try_as('regress_qt_worker', 'SELECT count(*) FROM querator.queue_tables(''qt'')');
SELECT try_as('regress_qt_outsider', 'SELECT count(*) FROM querator.queue_tables(''qt'')');
SELECT try('SELECT * FROM querator.queue_tables(''no_such_queue'')');
SELECT querator.queues_delete('qt', force => true);
SELECT querator.queues_delete('qt_other', force => true);
DROP ROLE regress_qt_worker;
DROP ROLE regress_qt_outsider;

---------------------------------------------------------------- payload_preview
SELECT querator.queues_create('pv', lease_timeout => '1 hour');
SELECT querator.queue_produce('pv', 'plain text'::text);
SELECT querator.queue_produce('pv', '{"to": "a@example.com", "n": 1}'::jsonb);
SELECT querator.queue_produce('pv', '\x00ff68'::bytea);
SELECT querator.queue_produce('pv', 'hello'::bytea, encoding => 'text/csv');
SELECT querator.queue_produce('pv', '<a/>'::text, encoding => 'application/xml');
SELECT querator.queue_produce('pv', '{}'::text, encoding => 'application/vnd.api+json');
SELECT querator.queue_produce('pv', 'png?'::text, encoding => 'image/png');
SELECT querator.queue_produce('pv', repeat('x', 300));
SELECT id, encoding, payload_preview FROM querator.storage_items_list('pv') WHERE id < 8;
-- long payloads are cut to 200 bytes
SELECT length(payload) AS payload_bytes, length(payload_preview) AS preview_chars
  FROM querator.storage_items_list('pv') WHERE id = 8;
-- the same column in the scheduled and dead lists
SELECT querator.queue_produce('pv', 'later'::text, enqueue_at => now() + interval '1 day');
SELECT querator.queue_produce('pv', '\x01'::bytea, enqueue_at => now() + interval '1 day');
SELECT encoding, payload_preview FROM querator.storage_scheduled_list('pv');
SELECT querator.queue_retry('pv', ARRAY(SELECT id FROM querator.queue_lease('pv', 'w', 3)), dead => true);
SELECT encoding, payload_preview FROM querator.storage_dead_list('pv');
SELECT querator.queues_delete('pv', force => true);

---------------------------------------------------------------- storage_items_delete: given items, all or none
SELECT querator.queues_create('del', lease_timeout => '1 hour', partitions => 2);
SELECT querator.queue_produce('del', ARRAY['a', 'b', 'c']::text[]) IS NOT NULL AS produced;
SELECT querator.queue_produce('del', 'later'::text, enqueue_at => now() + interval '1 day') IS NOT NULL AS scheduled;
SELECT count(*) AS leased FROM querator.queue_lease('del', 'w', 1);
-- a ready, a leased and a scheduled item
SELECT querator.storage_items_delete('del', ARRAY(
    SELECT id FROM querator.storage_items_list('del') WHERE leased OR convert_from(payload, 'UTF8') = 'c'
    UNION ALL SELECT id FROM querator.storage_scheduled_list('del'))) AS deleted;
SELECT string_agg(convert_from(payload, 'UTF8'), ' ' ORDER BY id) AS left_over FROM querator.storage_items_list('del');
SELECT sum(total) AS total, sum(total_leased) AS leased, sum(scheduled) AS scheduled FROM querator.queue_stats('del');
-- an id the queue does not hold fails the call, and nothing is deleted
SELECT min(id) AS kept_id FROM querator.storage_items_list('del') \gset
SELECT try_ids(format('SELECT querator.storage_items_delete(%L, ARRAY[%s, %s])', 'del', :kept_id, :kept_id + 1000));
SELECT try('SELECT querator.storage_items_delete(''del'', NULL)');
SELECT querator.storage_items_delete('del', '{}') AS deleted;
SELECT count(*) AS items FROM querator.storage_items_list('del');
SELECT querator.queues_delete('del', force => true);

SELECT querator.queues_delete('ops', force => true);
SELECT querator.queues_delete('ops_parts', force => true);
