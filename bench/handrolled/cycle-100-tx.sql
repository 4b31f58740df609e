-- cycle-100-tx (hand-rolled): lease 100 rows (SKIP LOCKED) and delete them in one transaction
BEGIN;
WITH leased AS (
  UPDATE handrolled SET vt = now() + interval '1 minute', read_ct = read_ct + 1
   WHERE id IN (SELECT id FROM handrolled WHERE vt <= now()
                 ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED)
  RETURNING id, payload)
SELECT count(*) AS n, array_agg(id) AS ids FROM leased \gset
\if :n > 0
DELETE FROM handrolled WHERE id = ANY (:ids::bigint[]);
\endif
COMMIT;
