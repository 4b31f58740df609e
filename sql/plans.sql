-- querator's statements stay on indexes whatever the planner statistics say.
-- The worst case for a cached plan: generic plans only, and a lease table analyzed
-- while empty, so that a sequential scan of it looks free. A cached lease plan that
-- probed the lease table by sequential scan once ran for 63 s as the table grew.
SET plan_cache_mode = force_generic_plan;
SELECT querator.queues_create('plans', lease_timeout => '1 hour');
SELECT format('querator_data.q%s_p0_items', id) AS items_table,
       format('querator_data.q%s_p0_leases', id) AS leases_table,
       format('q%s\_p0\_%%', id) AS table_pattern
  FROM querator.queues WHERE name = 'plans' \gset
SELECT cardinality(querator.queue_produce('plans', array_fill('x'::text, ARRAY[300]))) AS produced;
ANALYZE :items_table;
ANALYZE :leases_table;

-- pg_stat_xact_user_tables counts this backend's scans not yet reported (the index
-- builds of queues_create among them), so the calls are measured by difference
BEGIN;
CREATE TEMP TABLE scans_before AS
SELECT relname, seq_scan FROM pg_stat_xact_user_tables
 WHERE schemaname = 'querator_data' AND relname LIKE :'table_pattern';
-- lease, extend, complete and retry, many times
DO $$
DECLARE
	ids bigint[];
BEGIN
	FOR i IN 1..20 LOOP
		SELECT array_agg(id) INTO ids FROM querator.queue_lease('plans', 'c', 5);
		PERFORM querator.queue_extend('plans', ids, '2 hours');
		PERFORM querator.queue_complete('plans', ids[1:3]);
		PERFORM querator.queue_retry('plans', ids[4:5]);
	END LOOP;
END
$$;
SELECT regexp_replace(s.relname, '^q[0-9]+_', 'q_') AS table_name,
       s.seq_scan - b.seq_scan AS sequential_scans, s.idx_scan > 0 AS used_index
  FROM pg_stat_xact_user_tables s JOIN scans_before b USING (relname)
 WHERE s.schemaname = 'querator_data'
 ORDER BY 1;
COMMIT;

-- nothing lost: 300 produced, 60 completed, the rest ready again
SELECT count(*) AS remaining, count(*) FILTER (WHERE leased) AS leased
  FROM querator.storage_items_list('plans', "limit" => 1000);
RESET plan_cache_mode;
SELECT querator.queues_delete('plans', force => true);

---------------------------------------------------------------- the plan cache is bounded
-- A statement on a queue's tables has a plan per partition; a backend keeps the
-- querator.max_cached_plans most recently used (512 by default, about 100 KB each) and
-- frees the others, so its memory does not grow with the number of queues it touches.
-- Twelve queues used through produce, lease, extend, retry and complete need some 60
-- plans; with room for 16, the oldest are freed and prepared again when used again.
SET querator.max_cached_plans = 16;
SELECT count(querator.queues_create('bounded' || g, lease_timeout => '1 hour')) FROM generate_series(1, 12) g;
CREATE FUNCTION use_queue(q text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE ids bigint[];
BEGIN
    PERFORM querator.queue_produce(q, ARRAY['a', 'b', 'c']);
    SELECT array_agg(id ORDER BY id) INTO ids FROM querator.queue_lease(q, 'c', 3);
    PERFORM querator.queue_extend(q, ids[1:1]);
    PERFORM querator.queue_retry(q, ids[2:2]);
    RETURN querator.queue_complete(q, ids[1:1] || ids[3:3]);
END $$;
SELECT sum(use_queue('bounded' || g)) AS completed FROM generate_series(1, 12) g;
SELECT count(*) <= 16 AS bounded, count(*) > 0 AS kept_some
  FROM pg_backend_memory_contexts WHERE name = 'CachedPlanSource' AND ident LIKE '%querator\_data.%';
-- evicted plans are prepared again: a second pass works the same
SELECT sum(use_queue('bounded' || g)) AS completed_again FROM generate_series(1, 12) g;
SELECT sum(n) AS items_left FROM (SELECT count(*) AS n FROM generate_series(1, 12) g,
       querator.storage_items_list('bounded' || g) GROUP BY g) c;
RESET querator.max_cached_plans;
SELECT count(querator.queues_delete('bounded' || g, force => true)) FROM generate_series(1, 12) g;
DROP FUNCTION use_queue(text);
