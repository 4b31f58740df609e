-- queues_create / queues_info / queues_list / queues_update / queues_delete

-- create with every default
SELECT querator.queues_create('qdefaults');
SELECT queue_name, lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions,
       created_at = updated_at AS same_times, created_at <= now() AS created_in_past
  FROM querator.queues_info('qdefaults');

-- create with every option, by name
SELECT querator.queues_create('qdead');
SELECT querator.queues_create('qall', lease_timeout => '30 seconds', expire_timeout => '1 day',
                              max_attempts => 5, dead_queue => 'qdead', reference => 'ref-1',
                              partitions => 3);
SELECT queue_name, lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions
  FROM querator.queues_info('qall');

-- every option, by position
SELECT querator.queues_create('qpos', '2 minutes', '2 hours', 7, 'qdead', 'ref-2', 2);
SELECT queue_name, lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions
  FROM querator.queues_info('qpos');

-- an explicit NULL option means its default
SELECT querator.queues_create('qnulls', lease_timeout => NULL, expire_timeout => NULL, max_attempts => NULL,
                              dead_queue => NULL, reference => NULL, partitions => NULL);
SELECT queue_name, lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions
  FROM querator.queues_info('qnulls');
SELECT querator.queues_delete('qnulls');

-- lease_timeout equal to expire_timeout is allowed (only greater is refused)
SELECT querator.queues_create('qequal', lease_timeout => '1 hour', expire_timeout => '1 hour');
SELECT lease_timeout, expire_timeout FROM querator.queues_info('qequal');

-- limits that are allowed: max_attempts 65536, a 512-character name
SELECT querator.queues_create('qmax', max_attempts => 65536);
SELECT max_attempts FROM querator.queues_info('qmax');
SELECT querator.queues_create(repeat('n', 512));
SELECT length(queue_name) FROM querator.queues_info(repeat('n', 512));
SELECT querator.queues_delete(repeat('n', 512));

-- the tables of a partition exist per partition
SELECT count(*) > 0 AS item_tables_exist
  FROM pg_class WHERE relnamespace = 'querator_data'::regnamespace AND relkind IN ('r', 'p')
   AND relname ~ '^q[0-9]+_p[0-9]+_items$';

---------------------------------------------------------------- queues_list
SELECT querator.queues_create('list1');
SELECT querator.queues_create('list2');
SELECT querator.queues_create('list3');
SELECT querator.queues_create('list4');
-- every queue, ordered by name
SELECT queue_name, partitions FROM querator.queues_list();
-- the pivot is inclusive
SELECT queue_name FROM querator.queues_list('list2');
SELECT queue_name FROM querator.queues_list('list2', 2);
-- a pivot that names no queue starts at the next name
SELECT queue_name FROM querator.queues_list('list25', 2);
SELECT queue_name FROM querator.queues_list(pivot => 'list4');
SELECT queue_name FROM querator.queues_list("limit" => 1);
SELECT queue_name FROM querator.queues_list('zzz');
-- paging: each page starts at the last name of the previous one
SELECT string_agg(queue_name, ',' ORDER BY queue_name) FROM querator.queues_list(NULL, 3);
SELECT string_agg(queue_name, ',' ORDER BY queue_name) FROM querator.queues_list('list3', 3);
-- the list shows the same options as queues_info
SELECT l.queue_name, l.lease_timeout, l.expire_timeout, l.max_attempts, l.dead_queue,
       l.reference, l.partitions
  FROM querator.queues_list('qall', 1) l;

---------------------------------------------------------------- queues_update
SELECT updated_at AS before_update FROM querator.queues_info('qdefaults') \gset
-- no option given: nothing changes
SELECT querator.queues_update('qdefaults');
SELECT queue_name, lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions
  FROM querator.queues_info('qdefaults');
SELECT querator.queues_update('qdefaults', lease_timeout => '2 minutes');
SELECT lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions,
       updated_at > :'before_update'::timestamptz AS updated_at_moved,
       created_at < updated_at AS created_before_update
  FROM querator.queues_info('qdefaults');
SELECT querator.queues_update('qdefaults', expire_timeout => '1 hour');
SELECT lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions
  FROM querator.queues_info('qdefaults');
SELECT querator.queues_update('qdefaults', max_attempts => 3);
SELECT lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions
  FROM querator.queues_info('qdefaults');
SELECT querator.queues_update('qdefaults', dead_queue => 'qdead');
SELECT lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions
  FROM querator.queues_info('qdefaults');
SELECT querator.queues_update('qdefaults', reference => 'new-ref');
SELECT lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions
  FROM querator.queues_info('qdefaults');
-- NULL means unchanged for every option
SELECT querator.queues_update('qdefaults', NULL, NULL, NULL, NULL, NULL, NULL);
SELECT lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions
  FROM querator.queues_info('qdefaults');
-- dead_queue '' removes the dead queue; expire_timeout '0' removes the expire timeout
SELECT querator.queues_update('qdefaults', dead_queue => '');
SELECT querator.queues_update('qdefaults', expire_timeout => '0');
SELECT lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions
  FROM querator.queues_info('qdefaults');
-- max_attempts 0 is unlimited again; reference '' clears it
SELECT querator.queues_update('qdefaults', max_attempts => 0, reference => '');
SELECT lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions
  FROM querator.queues_info('qdefaults');
-- several options at once
SELECT querator.queues_update('qdefaults', lease_timeout => '10 seconds',
                              expire_timeout => '10 minutes', max_attempts => 9,
                              dead_queue => 'qdead', reference => 'many');
SELECT lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions
  FROM querator.queues_info('qdefaults');
-- a lease_timeout above the existing expire_timeout is refused, nothing changes
SELECT try($$SELECT querator.queues_update('qdefaults', lease_timeout => '1 hour', reference => 'x')$$);
SELECT lease_timeout, expire_timeout, reference FROM querator.queues_info('qdefaults');
-- raising both together is fine
SELECT querator.queues_update('qdefaults', lease_timeout => '1 hour', expire_timeout => '2 hours');
SELECT lease_timeout, expire_timeout FROM querator.queues_info('qdefaults');

---------------------------------------------------------------- partitions grow and shrink
SELECT querator.queues_create('qparts');
SELECT querator.queues_update('qparts', partitions => 3);
SELECT partitions FROM querator.queues_info('qparts');
-- three single produces land in three partitions (each goes to the one with fewest unleased items)
SELECT querator.queue_produce('qparts', 'p1'::text) IS NOT NULL AS produced;
SELECT querator.queue_produce('qparts', 'p2'::text) IS NOT NULL AS produced;
SELECT querator.queue_produce('qparts', 'p3'::text) IS NOT NULL AS produced;
SELECT count(*) AS items, count(DISTINCT partition) AS partitions_used
  FROM querator.storage_items_list('qparts', NULL, 1000);
-- shrinking is refused while the removed partitions hold items
SELECT try($$SELECT querator.queues_update('qparts', partitions => 1)$$);
SELECT partitions FROM querator.queues_info('qparts');
SELECT count(*) AS items FROM querator.storage_items_list('qparts', NULL, 1000);
-- empty the queue: one lease per partition, then complete everything
CREATE TEMP TABLE leased_ids (id bigint);
INSERT INTO leased_ids SELECT id FROM querator.queue_lease('qparts', 'c1', 10);
INSERT INTO leased_ids SELECT id FROM querator.queue_lease('qparts', 'c1', 10);
INSERT INTO leased_ids SELECT id FROM querator.queue_lease('qparts', 'c1', 10);
SELECT count(*) AS leased FROM leased_ids;
-- leased items still count: shrinking is refused
SELECT try($$SELECT querator.queues_update('qparts', partitions => 1)$$);
SELECT querator.queue_complete('qparts', (SELECT array_agg(id) FROM leased_ids));
-- empty: shrinking is allowed, and the queue still works
SELECT querator.queues_update('qparts', partitions => 1);
SELECT partitions FROM querator.queues_info('qparts');
SELECT querator.queue_produce('qparts', 'after shrink'::text) IS NOT NULL AS produced;
SELECT convert_from(payload, 'UTF8') AS payload, attempts FROM querator.queue_lease('qparts', 'c1', 10);
SELECT querator.queue_complete('qparts', ARRAY(SELECT id FROM querator.storage_items_list('qparts')));
DROP TABLE leased_ids;

---------------------------------------------------------------- live update
-- a new lease_timeout applies to new leases, a new expire_timeout to new items
SELECT querator.queues_create('qlive', lease_timeout => '1 hour', expire_timeout => '1 day');
SELECT cardinality(querator.queue_produce('qlive', ARRAY['old1', 'old2']::text[])) AS n;
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.queue_lease('qlive', 'c1');
SELECT querator.queues_update('qlive', lease_timeout => '2 hours', expire_timeout => '2 days');
SELECT querator.queue_produce('qlive', 'new'::text) IS NOT NULL AS produced;
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.queue_lease('qlive', 'c1');
SELECT convert_from(payload, 'UTF8') AS payload, leased,
       round(extract(epoch FROM lease_deadline - now()) / 3600) AS lease_hours,
       expire_deadline - created_at AS expires_after
  FROM querator.storage_items_list('qlive') ORDER BY id;
SELECT querator.queues_delete('qlive', force => true);

---------------------------------------------------------------- queues_delete
-- refused while another queue names it as its dead_queue (force detaches them: dead_queue_access.sql)
SELECT try($$SELECT querator.queues_delete('qdead')$$);
SELECT queue_name FROM querator.queues_info('qdead');
-- refused while items remain, unless force
SELECT querator.queue_produce('qequal', 'left behind'::text) IS NOT NULL AS produced;
SELECT try($$SELECT querator.queues_delete('qequal')$$);
SELECT count(*) AS items_kept FROM querator.storage_items_list('qequal');
SELECT querator.queues_delete('qequal', force => true);
SELECT try($$SELECT querator.queues_info('qequal')$$);
-- scheduled items count as items too
SELECT querator.queue_produce('qmax', 'later'::text, enqueue_at => now() + interval '1 day') IS NOT NULL AS produced;
SELECT try($$SELECT querator.queues_delete('qmax')$$);
SELECT querator.queues_delete('qmax', true);
-- a deleted name can be created again, empty
SELECT querator.queues_create('qequal');
SELECT count(*) AS items FROM querator.storage_items_list('qequal');
SELECT querator.queues_delete('qequal');
-- once nobody names it as dead_queue, the dead queue can go
SELECT querator.queues_delete('qall');
SELECT querator.queues_update('qdefaults', dead_queue => '');
SELECT querator.queues_delete('qpos');
SELECT querator.queues_delete('qdead');
SELECT querator.queues_delete('qdefaults');
SELECT querator.queues_delete('qparts');
SELECT querator.queues_delete('list1');
SELECT querator.queues_delete('list2');
SELECT querator.queues_delete('list3');
SELECT querator.queues_delete('list4');
SELECT try($$SELECT querator.queues_delete('list4')$$);

-- A change of querator.queues made outside the API (a superuser's UPDATE, a
-- restore's COPY) reaches every cached definition: the queues_changed trigger
-- moves the catalog version at commit (0.5.0). The first lease caches the
-- definition in this backend; without the trigger the second would still use
-- the one-minute lease timeout.
SELECT querator.queues_create('direct_edit', lease_timeout => '1 minute');
SELECT cardinality(querator.queue_produce('direct_edit', ARRAY['a', 'b']::text[])) AS produced;
SELECT lease_deadline < now() + interval '2 minutes' AS one_minute FROM querator.queue_lease('direct_edit', 'c1', 1);
UPDATE querator.queues SET lease_timeout = '2 hours' WHERE name = 'direct_edit';
SELECT lease_deadline > now() + interval '1 hour' AS two_hours FROM querator.queue_lease('direct_edit', 'c2', 1);
SELECT querator.queues_delete('direct_edit', true);

-- nothing is left: no queue, no item table (only the extension's templates)
SELECT count(*) AS queues FROM querator.queues_list();
SELECT count(*) AS item_tables
  FROM pg_class WHERE relnamespace = 'querator_data'::regnamespace AND relkind IN ('r', 'p')
   AND relname NOT IN ('items_template', 'leases_template', 'scheduled_template', 'dead_template');
