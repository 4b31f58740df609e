-- queue_retry: now, later, dead; max_attempts; dead_queue

SELECT querator.queues_create('rq', lease_timeout => '1 hour');
SELECT cardinality(querator.queue_produce('rq', ARRAY['a', 'b', 'c']::text[])) AS n;
SELECT id AS ida, attempts FROM querator.queue_lease('rq', 'c1') \gset
SELECT :attempts AS attempts_of_a;
SELECT max(id) AS maxid FROM querator.storage_items_list('rq') \gset

---------------------------------------------------------------- retry now
-- the item gets a new id at the tail, attempts kept, no longer leased
SELECT querator.queue_retry('rq', ARRAY[:ida]);
SELECT item_state('rq', :ida) AS old_id;
SELECT payloads('rq');
SELECT id > :maxid AS new_id_at_tail, attempts, leased, lease_deadline, client_id
  FROM querator.storage_items_list('rq') WHERE convert_from(payload, 'UTF8') = 'a';
-- the next leases: b and c first, then a with attempts + 1
SELECT convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('rq', 'c1', 2);
SELECT id AS ida, convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('rq', 'c1') \gset
SELECT :'payload' AS payload, :attempts AS attempts;
-- the single-id form; a retry_at in the past (or now) is a retry now
SELECT id AS idb FROM querator.storage_items_list('rq') WHERE convert_from(payload, 'UTF8') = 'b' \gset
SELECT id AS idc FROM querator.storage_items_list('rq') WHERE convert_from(payload, 'UTF8') = 'c' \gset
SELECT querator.queue_retry('rq', :idb);
SELECT querator.queue_retry('rq', :idc, now() - interval '1 hour');
SELECT payloads('rq');
-- within 100 ms is now as well
SELECT convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('rq', 'c1', 10);
SELECT id AS idb FROM querator.storage_items_list('rq') WHERE convert_from(payload, 'UTF8') = 'b' \gset
SELECT querator.queue_retry('rq', ARRAY[:idb], now() + interval '50 milliseconds');
SELECT payloads('rq');
SELECT count(*) AS scheduled FROM querator.storage_scheduled_list('rq');
SELECT convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('rq', 'c1', 10);
-- several ids in one call: all move to the tail, behind what was ready
SELECT querator.queue_produce('rq', 'd'::text) AS idd \gset
SELECT querator.queue_retry('rq', ARRAY(SELECT id FROM querator.storage_items_list('rq') WHERE leased));
SELECT payloads('rq');
SELECT count(*) FILTER (WHERE id > :idd) AS behind_d, count(*) AS ready
  FROM querator.storage_items_list('rq');
-- all or none: an item that is not leased fails the whole call
SELECT convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('rq', 'c1');
SELECT id AS idd FROM querator.storage_items_list('rq') WHERE leased \gset
SELECT min(id) AS ready_id FROM querator.storage_items_list('rq') WHERE NOT leased \gset
SELECT try_ids(format('SELECT querator.queue_retry(%L, ARRAY[%s, %s])', 'rq', :idd, :ready_id));
SELECT try_ids(format('SELECT querator.queue_retry(%L, ARRAY[%s, %s], dead => true)', 'rq', :idd, :ready_id));
SELECT payloads('rq');
SELECT count(*) AS dead FROM querator.storage_dead_list('rq');
-- a retry rolled back leaves the item leased
BEGIN;
SELECT querator.queue_retry('rq', :idd);
ROLLBACK;
SELECT item_state('rq', :idd) AS d;

---------------------------------------------------------------- retry later
SELECT now() + interval '1 day' AS later \gset
SELECT querator.queue_retry('rq', ARRAY[:idd], :'later');
SELECT item_state('rq', :idd) AS d;
SELECT payloads('rq');
SELECT convert_from(payload, 'UTF8') AS payload, attempts, enqueue_at = :'later'::timestamptz AS at_retry_at
  FROM querator.storage_scheduled_list('rq');
-- not leasable until then: the lease takes the ready ones only
SELECT convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('rq', 'c1', 10);
SELECT count(*) AS leased FROM querator.queue_lease('rq', 'c1', 10);

---------------------------------------------------------------- retry dead: the queue's own dead-letter table
SELECT id AS ida FROM querator.storage_items_list('rq') WHERE convert_from(payload, 'UTF8') = 'a' \gset
SELECT querator.queue_retry('rq', ARRAY[:ida], dead => true);
SELECT payloads('rq');
SELECT convert_from(payload, 'UTF8') AS payload, kind, reference, encoding, attempts, reason,
       dead_at <= now() AS dead_at_ok
  FROM querator.storage_dead_list('rq');
-- a dead item cannot be completed or retried any more
SELECT try_ids(format('SELECT querator.queue_complete(%L, %s::bigint)', 'rq', :ida));
SELECT querator.queues_delete('rq', force => true);

---------------------------------------------------------------- max_attempts
SELECT querator.queues_create('rmax', lease_timeout => '1 hour', max_attempts => 2);
SELECT querator.queue_produce('rmax', 'm'::text) IS NOT NULL AS produced;
SELECT querator.queue_produce('rmax', 'n'::text) IS NOT NULL AS produced;
-- attempt 1 < 2: requeued
SELECT id AS idm, attempts FROM querator.queue_lease('rmax', 'c1') \gset
SELECT :attempts AS attempts;
SELECT querator.queue_retry('rmax', :idm);
SELECT payloads('rmax');
-- attempt 2 >= 2: dead-lettered instead of requeued
SELECT convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('rmax', 'c1');
SELECT id AS idm, convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('rmax', 'c1') \gset
SELECT :'payload' AS payload, :attempts AS attempts;
SELECT querator.queue_retry('rmax', ARRAY(SELECT id FROM querator.storage_items_list('rmax') WHERE leased AND attempts = 1));
SELECT querator.queue_retry('rmax', :idm);
SELECT payloads('rmax');
SELECT convert_from(payload, 'UTF8') AS payload, attempts, reason FROM querator.storage_dead_list('rmax');
-- a retry later at max attempts is dead-lettered too
SELECT convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('rmax', 'c1');
SELECT querator.queue_retry('rmax', ARRAY(SELECT id FROM querator.storage_items_list('rmax') WHERE leased),
                            now() + interval '1 day');
SELECT payloads('rmax');
SELECT count(*) AS scheduled FROM querator.storage_scheduled_list('rmax');
SELECT convert_from(payload, 'UTF8') AS payload, attempts, reason FROM querator.storage_dead_list('rmax') ORDER BY id;
SELECT querator.queues_delete('rmax', force => true);

---------------------------------------------------------------- dead_queue
SELECT querator.queues_create('rdlq', lease_timeout => '1 hour');
SELECT querator.queues_create('rsrc', lease_timeout => '1 hour', max_attempts => 1, dead_queue => 'rdlq');
SELECT querator.queue_produce('rsrc', 'x'::text, kind => 'kx', reference => 'rx', encoding => 'text/x') AS idx \gset
SELECT querator.queue_produce('rsrc', 'y'::text, kind => 'ky', reference => 'ry') AS idy \gset
-- retry dead: copied into the dead queue, source_id = old id, attempts 0, gone from the source
SELECT id = :idx AS leased_x, attempts FROM querator.queue_lease('rsrc', 'c1');
SELECT querator.queue_retry('rsrc', ARRAY[:idx], dead => true);
SELECT payloads('rsrc');
SELECT count(*) AS own_dead FROM querator.storage_dead_list('rsrc');
SELECT convert_from(payload, 'UTF8') AS payload, kind, reference, encoding, attempts,
       source_id = :idx AS source_is_old_id, leased
  FROM querator.storage_items_list('rdlq');
-- max_attempts reached (1 >= 1): into the dead queue as well
SELECT id = :idy AS leased_y, attempts FROM querator.queue_lease('rsrc', 'c1');
SELECT querator.queue_retry('rsrc', ARRAY[:idy]);
SELECT payloads('rsrc');
SELECT convert_from(payload, 'UTF8') AS payload, kind, reference, attempts,
       source_id = :idy AS source_is_old_id
  FROM querator.storage_items_list('rdlq') ORDER BY id;
-- the dead queue is a normal queue: its items lease with attempts starting again at 1
SELECT convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('rdlq', 'c2', 10);
SELECT querator.queue_complete('rdlq', ARRAY(SELECT id FROM querator.storage_items_list('rdlq') WHERE leased));
SELECT payloads('rdlq');
SELECT querator.queues_delete('rsrc');
SELECT querator.queues_delete('rdlq');
