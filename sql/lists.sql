-- storage_items_list / storage_scheduled_list / storage_dead_list: pivot (inclusive) and limit

SELECT querator.queues_create('lst', lease_timeout => '1 hour');
SELECT count(*) FROM querator.storage_items_list('lst');
SELECT count(*) FROM querator.storage_scheduled_list('lst');
SELECT count(*) FROM querator.storage_dead_list('lst');

SELECT cardinality(querator.queue_produce('lst', ARRAY['i1', 'i2', 'i3', 'i4', 'i5', 'i6']::text[],
                                          kinds => ARRAY['k1', 'k2', 'k3', 'k4', 'k5', 'k6'])) AS n;
SELECT id AS id3 FROM querator.storage_items_list('lst') WHERE kind = 'k3' \gset
SELECT id AS id6 FROM querator.storage_items_list('lst') WHERE kind = 'k6' \gset

---------------------------------------------------------------- storage_items_list
-- default: everything, by id
SELECT convert_from(payload, 'UTF8') AS payload, kind, attempts, leased, client_id
  FROM querator.storage_items_list('lst');
-- limit
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.storage_items_list('lst', NULL, 2);
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.storage_items_list('lst', "limit" => 1);
-- the pivot is inclusive
SELECT id = :id3 AS starts_at_pivot, convert_from(payload, 'UTF8') AS payload
  FROM querator.storage_items_list('lst', :id3);
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.storage_items_list('lst', :id3, 2);
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.storage_items_list('lst', pivot => :id6);
-- past the last id: nothing
SELECT count(*) FROM querator.storage_items_list('lst', :id6 + 1);
-- paging: the last id of one page is the first of the next
SELECT max(id) AS page_end FROM querator.storage_items_list('lst', NULL, 3) \gset
SELECT string_agg(convert_from(payload, 'UTF8'), ' ' ORDER BY id) AS page2
  FROM querator.storage_items_list('lst', :page_end, 3);

-- the leased column, with lease details for leased items only
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.queue_lease('lst', 'worker-7', 2);
SELECT convert_from(payload, 'UTF8') AS payload, attempts, leased, client_id,
       lease_deadline IS NOT NULL AS has_deadline
  FROM querator.storage_items_list('lst');
SELECT count(*) FILTER (WHERE leased) AS leased, count(*) FILTER (WHERE NOT leased) AS ready
  FROM querator.storage_items_list('lst', :id3, 2);

---------------------------------------------------------------- storage_scheduled_list
SELECT cardinality(querator.queue_produce('lst', ARRAY['s1', 's2', 's3', 's4']::text[],
                                          enqueue_at => now() + interval '1 day')) AS n;
SELECT convert_from(payload, 'UTF8') AS payload, attempts, enqueue_at > now() AS in_future
  FROM querator.storage_scheduled_list('lst');
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.storage_scheduled_list('lst', NULL, 2);
SELECT id AS s3 FROM querator.storage_scheduled_list('lst') WHERE convert_from(payload, 'UTF8') = 's3' \gset
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.storage_scheduled_list('lst', :s3);
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.storage_scheduled_list('lst', :s3, 1);
-- scheduled items are not in the items list
SELECT count(*) AS items FROM querator.storage_items_list('lst');

---------------------------------------------------------------- storage_dead_list
SELECT querator.queue_retry('lst', ARRAY(SELECT id FROM querator.storage_items_list('lst') WHERE leased),
                            dead => true);
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.queue_lease('lst', 'worker-7', 2);
SELECT querator.queue_retry('lst', ARRAY(SELECT id FROM querator.storage_items_list('lst') WHERE leased),
                            dead => true);
SELECT convert_from(payload, 'UTF8') AS payload, kind, attempts, reason
  FROM querator.storage_dead_list('lst');
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.storage_dead_list('lst', NULL, 3);
SELECT id AS d3 FROM querator.storage_dead_list('lst') WHERE kind = 'k3' \gset
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.storage_dead_list('lst', :d3);
SELECT convert_from(payload, 'UTF8') AS payload FROM querator.storage_dead_list('lst', :d3, 1);
-- dead items are in no other list
SELECT payloads('lst');
SELECT count(*) AS scheduled FROM querator.storage_scheduled_list('lst');
SELECT querator.queues_delete('lst', force => true);
