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
