-- The stats view and queues_list over a few hundred queues (issue 17). The
-- statistics read each table through the access methods (a planned statement
-- per partition before); every figure must match what the queues hold.
-- Lease timeouts are long, so the background worker moves nothing here.
-- One transaction per queue: a partition's tables and segments take some 30 locks to create
-- (docs/design.md, "Segments"), more than max_locks_per_transaction allows for 300 queues at once.
DO $$
BEGIN
    FOR i IN 1 .. 300 LOOP
        PERFORM querator.queues_create('sm_' || lpad(i::text, 3, '0'), lease_timeout => '1 hour',
                                       partitions => CASE WHEN i % 7 = 0 THEN 2 ELSE 1 END);
        COMMIT;
    END LOOP;
END $$;
SELECT count(*) AS created FROM querator.queues WHERE name LIKE 'sm\_%';
-- queue i: 2 + i % 5 items, i % 3 of them leased; i % 4 = 0: one scheduled item;
-- i % 6 = 0: one more leased and dead-lettered
SELECT count(querator.queue_produce('sm_' || lpad(i::text, 3, '0'), array_fill('{"n": 1}'::jsonb, ARRAY[2 + i % 5])))
  FROM generate_series(1, 300) i;
SELECT count(*) AS leased
  FROM generate_series(1, 300) i, LATERAL querator.queue_lease('sm_' || lpad(i::text, 3, '0'), 'w', i % 3)
 WHERE i % 3 > 0;
SELECT count(querator.queue_produce('sm_' || lpad(i::text, 3, '0'), ARRAY['{}'::jsonb], enqueue_at => now() + interval '1 day'))
  FROM generate_series(1, 300) i WHERE i % 4 = 0;
SELECT sum(querator.queue_retry('sm_' || lpad(i::text, 3, '0'),
                                ARRAY(SELECT id FROM querator.queue_lease('sm_' || lpad(i::text, 3, '0'), 'w', 1)),
                                dead => true)) AS dead
  FROM generate_series(1, 300) i WHERE i % 6 = 0;

-- every queue's figures, summed over its partitions, against what was done to it
WITH s AS (SELECT queue_name, sum(total) AS t, sum(total_leased) AS l, sum(scheduled) AS sc, sum(dead) AS d,
                  count(*) AS parts
             FROM querator.stats WHERE queue_name LIKE 'sm\_%' GROUP BY queue_name),
     -- t: ready items, leased ones included (Querator's meaning of total)
     e AS (SELECT 'sm_' || lpad(i::text, 3, '0') AS queue_name, 2 + i % 5 - (i % 6 = 0)::int AS t,
                  i % 3 AS l, (i % 4 = 0)::int AS sc, (i % 6 = 0)::int AS d,
                  CASE WHEN i % 7 = 0 THEN 2 ELSE 1 END AS parts
             FROM generate_series(1, 300) i)
SELECT count(*) AS queues,
       count(*) FILTER (WHERE (s.t, s.l, s.sc, s.d, s.parts) IS DISTINCT FROM (e.t, e.l, e.sc, e.d, e.parts)) AS mismatched
  FROM e LEFT JOIN s USING (queue_name);
-- per partition: the counts match the storage lists; ages exactly where items are
WITH l AS (SELECT q.queue_name, i.partition, count(*) AS t,
                  count(*) FILTER (WHERE i.leased) AS l
             FROM querator.queues_list('sm_', 1000) q, LATERAL querator.storage_items_list(q.queue_name, NULL, 1000) i
            GROUP BY 1, 2)
SELECT count(*) AS partitions,
       count(*) FILTER (WHERE (s.total, s.total_leased) IS DISTINCT FROM (coalesce(l.t, 0), coalesce(l.l, 0))) AS mismatched,
       count(*) FILTER (WHERE (s.total > 0) <> (s.oldest_age IS NOT NULL)) AS wrong_oldest_age,
       count(*) FILTER (WHERE s.oldest_age < s.average_age OR s.average_age < '0') AS wrong_average_age,
       count(*) FILTER (WHERE (s.total_leased > 0) <> (s.average_lease_remaining IS NOT NULL)
                           OR s.average_lease_remaining NOT BETWEEN '0' AND '1 hour') AS wrong_lease_remaining
  FROM querator.stats s LEFT JOIN l USING (queue_name, partition)
 WHERE s.queue_name LIKE 'sm\_%';
-- queue_stats of one queue is the view's rows
SELECT count(*) AS differing FROM (
    (SELECT * FROM querator.queue_stats('sm_042') EXCEPT SELECT * FROM querator.stats WHERE queue_name = 'sm_042')
    UNION ALL
    (SELECT * FROM querator.stats WHERE queue_name = 'sm_042' EXCEPT SELECT * FROM querator.queue_stats('sm_042'))) d;

-- queues_list: all of them in name order, and from a pivot
SELECT count(*), min(queue_name), max(queue_name),
       array_agg(queue_name ORDER BY queue_name) = array_agg(queue_name) AS in_order
  FROM querator.queues_list('sm_', 1000) WHERE queue_name LIKE 'sm\_%';
SELECT queue_name, partitions FROM querator.queues_list('sm_147', 3);
SELECT queue_name, partitions FROM querator.queues_info('sm_299');

DO $$
BEGIN
    FOR i IN 1 .. 300 LOOP
        PERFORM querator.queues_delete('sm_' || lpad(i::text, 3, '0'), force => true);
        COMMIT;
    END LOOP;
END $$;
SELECT count(*) AS left_over FROM querator.queues WHERE name LIKE 'sm\_%';
