-- queue_lease / queue_complete / queue_extend

SELECT querator.queues_create('lc', lease_timeout => '1 hour');
-- a lease from an empty queue returns no rows
SELECT * FROM querator.queue_lease('lc', 'c1');
SELECT * FROM querator.queue_lease('lc', 'c1', 10);

SELECT cardinality(querator.queue_produce('lc', ARRAY['a', 'b', 'c', 'd', 'e', 'f']::text[],
                                          kinds => ARRAY['ka', 'kb', 'kc', 'kd', 'ke', 'kf'],
                                          item_references => ARRAY['ra', 'rb', 'rc', 'rd', 're', 'rf'])) AS n;
SELECT min(id) AS first_id FROM querator.storage_items_list('lc') \gset

-- default batch_size is 1: the oldest item, attempts 1, leased for lease_timeout from now
SELECT id = :first_id AS oldest, partition IS NOT NULL AS has_partition, kind, reference, encoding,
       convert_from(payload, 'UTF8') AS payload, attempts,
       lease_deadline - now() BETWEEN interval '59 minutes' AND interval '61 minutes' AS deadline_ok,
       created_at <= now() AS created_ok
  FROM querator.queue_lease('lc', 'c1');
-- batch_size 3: the next three, oldest first
SELECT convert_from(payload, 'UTF8') AS payload, kind, attempts,
       id > lag(id) OVER () IS NOT FALSE AS ascending
  FROM querator.queue_lease('lc', 'c2', 3);
-- the lease shows in the storage list
SELECT convert_from(payload, 'UTF8') AS payload, leased, client_id, attempts,
       lease_deadline > now() AS deadline_in_future
  FROM querator.storage_items_list('lc') ORDER BY id;
-- batch_size larger than what is ready: what is ready
SELECT convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('lc', 'c3', 100);
-- nothing ready any more
SELECT count(*) AS leased_now FROM querator.queue_lease('lc', 'c3', 100);
SELECT payloads('lc');

---------------------------------------------------------------- complete
SELECT id AS ida FROM querator.storage_items_list('lc') WHERE kind = 'ka' \gset
SELECT id AS idb FROM querator.storage_items_list('lc') WHERE kind = 'kb' \gset
SELECT id AS idc FROM querator.storage_items_list('lc') WHERE kind = 'kc' \gset
SELECT id AS idd FROM querator.storage_items_list('lc') WHERE kind = 'kd' \gset
SELECT id AS ide FROM querator.storage_items_list('lc') WHERE kind = 'ke' \gset
SELECT id AS idf FROM querator.storage_items_list('lc') WHERE kind = 'kf' \gset
-- the array form returns how many were completed
SELECT querator.queue_complete('lc', ARRAY[:ida, :idc]);
SELECT payloads('lc');
SELECT item_state('lc', :ida) AS a, item_state('lc', :idc) AS c;
-- the single-id form
SELECT querator.queue_complete('lc', :idb);
SELECT payloads('lc');
-- all or none: one completed (unknown) id fails the whole call, nothing is completed
SELECT try_ids(format('SELECT querator.queue_complete(%L, ARRAY[%s, %s])', 'lc', :idd, :ida));
SELECT payloads('lc');
-- all or none: one unknown id
SELECT try_ids(format('SELECT querator.queue_complete(%L, ARRAY[%s, %s, %s])', 'lc', :idd, :ide, :idf + 1000));
SELECT payloads('lc');
-- completing twice fails the second time
SELECT querator.queue_complete('lc', ARRAY[:idd]);
SELECT try_ids(format('SELECT querator.queue_complete(%L, %s::bigint)', 'lc', :idd));
-- an item that is ready but not leased cannot be completed, and stays ready
SELECT querator.queue_produce('lc', 'g'::text) AS idg \gset
SELECT try_ids(format('SELECT querator.queue_complete(%L, ARRAY[%s, %s])', 'lc', :ide, :idg));
SELECT payloads('lc');
SELECT item_state('lc', :idg) AS g, item_state('lc', :ide) AS e;

---------------------------------------------------------------- transactions
-- a completion rolled back leaves the item leased
BEGIN;
SELECT querator.queue_complete('lc', ARRAY[:ide]);
ROLLBACK;
SELECT item_state('lc', :ide) AS e;
-- a lease rolled back leaves the item ready, with its attempts unchanged
BEGIN;
SELECT convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('lc', 'c4');
ROLLBACK;
SELECT item_state('lc', :idg) AS g;
SELECT convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('lc', 'c4');
-- lease and complete in one transaction
BEGIN;
SELECT querator.queue_produce('lc', 'h'::text) AS idh \gset
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.queue_lease('lc', 'c5');
SELECT querator.queue_complete('lc', :idh);
COMMIT;
SELECT item_state('lc', :idh) AS h;

---------------------------------------------------------------- extend
SELECT lease_deadline AS e_deadline FROM querator.storage_items_list('lc') WHERE id = :ide \gset
-- with an explicit lease_timeout: now + that timeout
SELECT querator.queue_extend('lc', ARRAY[:ide, :idf], '3 hours');
SELECT convert_from(payload, 'UTF8') AS payload, leased, attempts,
       lease_deadline - now() BETWEEN interval '179 minutes' AND interval '181 minutes' AS deadline_ok
  FROM querator.storage_items_list('lc') WHERE id IN (:ide, :idf) ORDER BY id;
-- without: now + the queue's lease_timeout
SELECT querator.queue_extend('lc', :ide);
SELECT lease_deadline - now() BETWEEN interval '59 minutes' AND interval '61 minutes' AS deadline_ok,
       lease_deadline > :'e_deadline'::timestamptz AS later_than_first_lease, attempts
  FROM querator.storage_items_list('lc') WHERE id = :ide;
-- a shorter timeout is allowed too
SELECT querator.queue_extend('lc', :idf, '5 minutes');
SELECT lease_deadline - now() BETWEEN interval '4 minutes' AND interval '6 minutes' AS deadline_ok
  FROM querator.storage_items_list('lc') WHERE id = :idf;
-- all or none: an unknown (completed) id fails the whole call, the other deadline is unchanged
SELECT lease_deadline AS f_deadline FROM querator.storage_items_list('lc') WHERE id = :idf \gset
SELECT try_ids(format('SELECT querator.queue_extend(%L, ARRAY[%s, %s], %L)', 'lc', :idf, :idh, '2 hours'));
SELECT lease_deadline = :'f_deadline'::timestamptz AS unchanged
  FROM querator.storage_items_list('lc') WHERE id = :idf;
-- the extended items can be completed
SELECT querator.queue_complete('lc', ARRAY[:ide, :idf, :idg]);
SELECT payloads('lc');
SELECT count(*) FROM querator.storage_scheduled_list('lc');
SELECT count(*) FROM querator.storage_dead_list('lc');
SELECT querator.queues_delete('lc');

---------------------------------------------------------------- FIFO over many items
SELECT querator.queues_create('fifo', lease_timeout => '1 hour');
SELECT cardinality(querator.queue_produce('fifo', ARRAY(SELECT 'i' || g FROM generate_series(1, 50) g))) AS n;
CREATE TEMP TABLE got (n serial, payload text, attempts int);
INSERT INTO got (payload, attempts) SELECT convert_from(payload, 'UTF8'), attempts FROM querator.queue_lease('fifo', 'x', 7);
INSERT INTO got (payload, attempts) SELECT convert_from(payload, 'UTF8'), attempts FROM querator.queue_lease('fifo', 'x', 1);
INSERT INTO got (payload, attempts) SELECT convert_from(payload, 'UTF8'), attempts FROM querator.queue_lease('fifo', 'x', 20);
INSERT INTO got (payload, attempts) SELECT convert_from(payload, 'UTF8'), attempts FROM querator.queue_lease('fifo', 'x', 50);
SELECT count(*) AS leased, bool_and(payload = 'i' || n) AS fifo, bool_and(attempts = 1) AS first_attempt FROM got;
SELECT querator.queue_complete('fifo', ARRAY(SELECT id FROM querator.storage_items_list('fifo', NULL, 1000)));
DROP TABLE got;
SELECT querator.queues_delete('fifo');

---------------------------------------------------------------- a rolled-back lease below the cursor
-- Leases start past what other leases claimed (the cursor), and every few leases at
-- the head: items a rolled-back lease released come back within a few leases, and
-- no item is skipped for good.
SELECT querator.queues_create('cursor', lease_timeout => '1 hour');
SELECT cardinality(querator.queue_produce('cursor', ARRAY(SELECT 'c' || g FROM generate_series(1, 30) g))) AS n;
BEGIN;
SELECT convert_from(payload, 'UTF8') AS rolled_back FROM querator.queue_lease('cursor', 'x', 2);
ROLLBACK;
CREATE TEMP TABLE got (n serial, payload text);
DO $$
BEGIN
	FOR i IN 1..16 LOOP
		INSERT INTO got (payload) SELECT convert_from(payload, 'UTF8') FROM querator.queue_lease('cursor', 'x', 1);
	END LOOP;
END
$$;
SELECT count(*) FILTER (WHERE payload IN ('c1', 'c2')) AS released_back_within_16_leases FROM got;
INSERT INTO got (payload) SELECT convert_from(payload, 'UTF8') FROM querator.queue_lease('cursor', 'x', 100);
SELECT count(*) AS leased, count(DISTINCT payload) AS distinct_items FROM got;
DROP TABLE got;
SELECT querator.queues_delete('cursor', force => true);

---------------------------------------------------------------- the one-call loop: queue_complete_and_lease
SELECT querator.queues_create('loop', lease_timeout => '1 hour');
SELECT cardinality(querator.queue_produce('loop', ARRAY['l1', 'l2', 'l3', 'l4', 'l5', 'l6', 'l7']::text[])) AS n;
-- the first call completes nothing: NULL or an empty array
CREATE TEMP TABLE batch AS
SELECT id, convert_from(payload, 'UTF8') AS payload, attempts
  FROM querator.queue_complete_and_lease('loop', 'w1', NULL, 2);
SELECT payload, attempts FROM batch ORDER BY id;
SELECT count(*) AS leased FROM querator.queue_complete_and_lease('loop', 'w2', '{}', 1);
-- each call completes the previous batch and leases the next, in one statement
CREATE TEMP TABLE next_batch AS
SELECT id, convert_from(payload, 'UTF8') AS payload
  FROM querator.queue_complete_and_lease('loop', 'w1', ARRAY(SELECT id FROM batch), 2);
SELECT payload FROM next_batch ORDER BY id;
SELECT convert_from(payload, 'UTF8') AS left_in_queue, leased, client_id
  FROM querator.storage_items_list('loop') ORDER BY id;
-- all or none, as queue_complete: an id that is not leased fails the call, which leases
-- nothing and completes nothing (an unleased, a missing and a duplicate id)
SELECT id AS unleased FROM querator.storage_items_list('loop') WHERE NOT leased ORDER BY id LIMIT 1 \gset
SELECT * FROM querator.queue_complete_and_lease('loop', 'w1', ARRAY(SELECT id FROM next_batch) || :unleased::bigint, 2);
SELECT * FROM querator.queue_complete_and_lease('loop', 'w1', ARRAY(SELECT id FROM next_batch) || 12345::bigint, 2);
SELECT count(*) AS still_leased FROM querator.storage_items_list('loop') WHERE leased;
SELECT count(*) AS leased FROM querator.queue_complete_and_lease('loop', 'w1',
    ARRAY(SELECT id FROM next_batch) || ARRAY(SELECT id FROM next_batch), 10);
SELECT convert_from(payload, 'UTF8') AS left_in_queue, leased FROM querator.storage_items_list('loop') ORDER BY id;
-- bad input is refused before anything happens
SELECT * FROM querator.queue_complete_and_lease('loop', 'w1', ARRAY[NULL]::bigint[]);
SELECT * FROM querator.queue_complete_and_lease('loop', 'w1', ARRAY[[1, 2]]::bigint[]);
SELECT * FROM querator.queue_complete_and_lease('loop', 'w1', '{}', 0);
SELECT * FROM querator.queue_complete_and_lease('nope', 'w1', '{}');
-- with a wait, the completes belong to the call's transaction: a call that waits and
-- finds nothing still completes, and a rollback undoes both
SELECT array_agg(id) AS all_leased FROM querator.storage_items_list('loop') WHERE leased \gset
BEGIN;
SELECT count(*) AS leased_after_wait
  FROM querator.queue_complete_and_lease('loop', 'w1', :'all_leased'::bigint[], 10, '50 milliseconds');
SELECT count(*) AS items_in_transaction FROM querator.storage_items_list('loop');
ROLLBACK;
SELECT count(*) AS items_after_rollback, count(*) FILTER (WHERE leased) AS still_leased
  FROM querator.storage_items_list('loop');
SELECT count(*) AS leased_after_wait
  FROM querator.queue_complete_and_lease('loop', 'w1', :'all_leased'::bigint[], 10, '50 milliseconds');
SELECT count(*) AS items_left FROM querator.storage_items_list('loop');
DROP TABLE batch, next_batch;
SELECT querator.queues_delete('loop');
