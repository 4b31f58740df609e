-- queue_produce: single and batch forms, payload types, encodings, scheduling

SELECT querator.queues_create('items', lease_timeout => '1 hour');

---------------------------------------------------------------- single produce
-- bytea payload: encoding defaults to application/octet-stream
SELECT querator.queue_produce('items', '\x00ff10'::bytea) AS id1 \gset
-- text payload: text/plain
SELECT querator.queue_produce('items', 'hello'::text) AS id2 \gset
-- jsonb payload: application/json
SELECT querator.queue_produce('items', '{"b": [1, 2], "a": "x"}'::jsonb) AS id3 \gset
-- an untyped literal is taken as text
SELECT querator.queue_produce('items', 'untyped') AS id4 \gset
-- kind, reference and encoding given
SELECT querator.queue_produce('items', 'with options'::text, kind => 'email', reference => 'user-1',
                              encoding => 'text/x-custom') AS id5 \gset
-- positional
SELECT querator.queue_produce('items', '\xbeef'::bytea, 'k', 'r', NULL, 'application/x-raw') AS id6 \gset
-- ids increase in produce order
SELECT :id1 < :id2 AND :id2 < :id3 AND :id3 < :id4 AND :id4 < :id5 AND :id5 < :id6 AS ids_increase;

SELECT id = :id1 AS is_id1, kind, reference, encoding, payload, attempts, leased, source_id,
       expire_deadline IS NULL AS never_expires, client_id, lease_deadline,
       created_at <= now() AS created_in_past
  FROM querator.storage_items_list('items') ORDER BY id;
SELECT convert_from(payload, 'UTF8') AS payload, encoding
  FROM querator.storage_items_list('items') WHERE encoding LIKE 'text/%' OR encoding = 'application/json' ORDER BY id;
-- nothing is scheduled or dead
SELECT count(*) FROM querator.storage_scheduled_list('items');
SELECT count(*) FROM querator.storage_dead_list('items');

-- the items lease in produce order, and come back as produced
SELECT id = :id1 AS is_id1, kind, reference, encoding, payload, attempts
  FROM querator.queue_lease('items', 'reader', 2);
SELECT CASE WHEN encoding LIKE 'text/%' OR encoding = 'application/json' THEN convert_from(payload, 'UTF8')
            ELSE encode(payload, 'hex') END AS payload, kind, reference, encoding, attempts
  FROM querator.queue_lease('items', 'reader', 10);
SELECT count(*) AS leased FROM querator.storage_items_list('items') WHERE leased;
SELECT querator.queue_complete('items', ARRAY[:id1, :id2, :id3, :id4, :id5, :id6]);
SELECT count(*) AS left FROM querator.storage_items_list('items');

-- a produce rolled back leaves nothing
BEGIN;
SELECT querator.queue_produce('items', 'rolled back'::text) IS NOT NULL AS produced;
SELECT count(*) AS inside_transaction FROM querator.storage_items_list('items');
ROLLBACK;
SELECT count(*) AS after_rollback FROM querator.storage_items_list('items');

-- empty payloads are allowed
SELECT querator.queue_produce('items', ''::text) IS NOT NULL AS produced;
SELECT querator.queue_produce('items', ''::bytea) IS NOT NULL AS produced;
SELECT length(payload) AS len, encoding FROM querator.storage_items_list('items') ORDER BY id;
SELECT querator.queue_complete('items', ARRAY(SELECT id FROM querator.queue_lease('items', 'reader', 10)));

---------------------------------------------------------------- batch produce
-- text[]: one id per payload, in order
WITH r AS (SELECT querator.queue_produce('items', ARRAY['t1', 't2', 't3']::text[]) AS ids)
SELECT cardinality(ids) AS n, ids[1] < ids[2] AND ids[2] < ids[3] AS ascending,
       ids[1] > :id6 AS after_earlier
  FROM r;
-- bytea[] and jsonb[]
SELECT cardinality(querator.queue_produce('items', ARRAY['\x01'::bytea, '\x0203'::bytea])) AS n;
SELECT cardinality(querator.queue_produce('items', ARRAY['{"n": 1}'::jsonb, '[true]'::jsonb])) AS n;
-- kinds and item_references arrays
SELECT cardinality(querator.queue_produce('items', ARRAY['k1', 'k2']::text[],
                                          kinds => ARRAY['kind-a', 'kind-b'],
                                          item_references => ARRAY['ref-a', 'ref-b'])) AS n;
-- only kinds; encoding given for the whole batch
SELECT cardinality(querator.queue_produce('items', ARRAY['e1', 'e2']::text[],
                                          kinds => ARRAY['only-kind', 'only-kind'],
                                          encoding => 'text/csv')) AS n;
SELECT kind, reference, encoding, attempts, leased,
       CASE WHEN encoding LIKE 'text/%' OR encoding = 'application/json' THEN convert_from(payload, 'UTF8')
            ELSE encode(payload, 'hex') END AS payload
  FROM querator.storage_items_list('items') ORDER BY id;
-- a batch of exactly max_batch_size is accepted
SHOW querator.max_batch_size;
SELECT cardinality(querator.queue_produce('items',
           ARRAY(SELECT 'b' || g FROM generate_series(1, 1000) g))) AS n;
SELECT count(*) AS items FROM querator.storage_items_list('items', NULL, 10000);
-- the 1000 items keep their order
SELECT bool_and(convert_from(payload, 'UTF8') = 'b' || rn) AS in_order
  FROM (SELECT payload, row_number() OVER (ORDER BY id) AS rn
          FROM querator.storage_items_list('items', NULL, 10000)
         WHERE kind = '' AND reference = '' AND convert_from(payload, 'UTF8') LIKE 'b%') s;
-- one item goes through a VALUES insert of its own: arrays that do not start at
-- index 1 (possible with the bytea[] form) still give the item, kind and reference
SELECT querator.queue_produce('items', '[0:0]={"\\x6f6e65"}'::bytea[], '[3:3]={k1}'::text[],
                              '[-2:-2]={r1}'::text[]) IS NOT NULL AS produced;
SELECT convert_from(payload, 'UTF8') AS payload, kind, reference
  FROM querator.storage_items_list('items', NULL, 10000) WHERE kind = 'k1';
SELECT querator.queues_delete('items', force => true);

---------------------------------------------------------------- enqueue_at
SELECT querator.queues_create('sched', lease_timeout => '1 hour');
-- in the future: scheduled, not leasable
SELECT now() + interval '1 day' AS due \gset
SELECT querator.queue_produce('sched', 'future'::text, enqueue_at => :'due') AS fut \gset
SELECT count(*) AS ready FROM querator.storage_items_list('sched');
SELECT id = :fut AS same_id, convert_from(payload, 'UTF8') AS payload, attempts,
       enqueue_at = :'due'::timestamptz AS enqueue_at_kept
  FROM querator.storage_scheduled_list('sched');
SELECT count(*) AS leased FROM querator.queue_lease('sched', 'c', 10);
SELECT item_state('sched', :fut);
-- in the past: ready at once, behind what was already ready
SELECT querator.queue_produce('sched', 'now'::text) AS now_id \gset
SELECT querator.queue_produce('sched', 'past'::text, enqueue_at => now() - interval '1 hour') AS past \gset
SELECT item_state('sched', :past), :past > :now_id AS at_tail;
SELECT count(*) AS scheduled FROM querator.storage_scheduled_list('sched');
SELECT convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('sched', 'c', 10);
-- a batch in the future: all scheduled, still in order
SELECT cardinality(querator.queue_produce('sched', ARRAY['f1', 'f2', 'f3']::text[],
                                          enqueue_at => now() + interval '2 days')) AS n;
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.storage_scheduled_list('sched') ORDER BY id;
SELECT count(*) AS leased FROM querator.queue_lease('sched', 'c', 10);
-- a scheduled produce rolled back leaves nothing
BEGIN;
SELECT querator.queue_produce('sched', 'rolled back'::text, enqueue_at => now() + interval '1 day') IS NOT NULL AS produced;
ROLLBACK;
SELECT count(*) AS scheduled FROM querator.storage_scheduled_list('sched');
SELECT querator.queues_delete('sched', force => true);

---------------------------------------------------------------- expire_timeout and partitions
-- expire_deadline = produce time + expire_timeout
SELECT querator.queues_create('exp', lease_timeout => '1 minute', expire_timeout => '1 day');
SELECT querator.queue_produce('exp', 'x'::text) IS NOT NULL AS produced;
SELECT expire_deadline - created_at AS expires_after FROM querator.storage_items_list('exp');
SELECT querator.queues_delete('exp', force => true);

-- all items of one call go to one partition, the one with the fewest unleased items
SELECT querator.queues_create('parts', partitions => 2);
SELECT cardinality(querator.queue_produce('parts', ARRAY['a1', 'a2', 'a3']::text[])) AS n;
SELECT count(DISTINCT partition) AS partitions_used FROM querator.storage_items_list('parts');
SELECT querator.queue_produce('parts', 'b1'::text) IS NOT NULL AS produced;
SELECT count(DISTINCT partition) AS partitions_used FROM querator.storage_items_list('parts');
SELECT string_agg(convert_from(payload, 'UTF8'), ' ' ORDER BY id) AS items_of_partition
  FROM querator.storage_items_list('parts') GROUP BY partition ORDER BY 1;
-- b1's partition still has fewer unleased items
SELECT cardinality(querator.queue_produce('parts', ARRAY['c1']::text[])) AS n;
SELECT string_agg(convert_from(payload, 'UTF8'), ' ' ORDER BY id) AS items_of_partition
  FROM querator.storage_items_list('parts') GROUP BY partition ORDER BY 1;
SELECT querator.queues_delete('parts', force => true);

-- items produced in a rolled-back savepoint do not count: the next produces spread evenly
SELECT querator.queues_create('sp', partitions => 2);
BEGIN;
SAVEPOINT a;
SELECT cardinality(querator.queue_produce('sp', (SELECT array_agg(i::text) FROM generate_series(1, 100) i))) AS n;
ROLLBACK TO a;
COMMIT;
SELECT querator.queue_produce('sp', 'x1'::text) IS NOT NULL, querator.queue_produce('sp', 'x2'::text) IS NOT NULL;
SELECT querator.queue_produce('sp', 'x3'::text) IS NOT NULL, querator.queue_produce('sp', 'x4'::text) IS NOT NULL;
SELECT partition_count, count(*) AS partitions
  FROM (SELECT partition, count(*) AS partition_count FROM querator.storage_items_list('sp') GROUP BY partition) s
 GROUP BY partition_count;
SELECT querator.queues_delete('sp', force => true);
