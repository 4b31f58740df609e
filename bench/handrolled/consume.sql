-- steady / held-xmin consumer (hand-rolled): lease up to 10, delete what came;
-- on an empty queue back off 10 ms
WITH leased AS (
  UPDATE handrolled SET vt = now() + interval '1 minute', read_ct = read_ct + 1
   WHERE id IN (SELECT id FROM handrolled WHERE vt <= now()
                 ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED)
  RETURNING id, payload)
SELECT count(*) AS n, coalesce(array_agg(id), '{}') AS ids FROM leased \gset
\if :n > 0
DELETE FROM handrolled WHERE id = ANY (:ids::bigint[]);
\else
\sleep 10 ms
\endif
