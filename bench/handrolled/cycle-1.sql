-- cycle-1 (hand-rolled): lease 1 row (SKIP LOCKED), then delete it: two autocommit calls.
-- Also held-xmin-drain's consumer (bench/run).
-- Same one-row guard as querator's script.
WITH leased AS (
  UPDATE handrolled SET vt = now() + interval '1 minute', read_ct = read_ct + 1
   WHERE id IN (SELECT id FROM handrolled WHERE vt <= now()
                 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING id, payload)
SELECT count(*) AS n, max(id) AS id FROM leased \gset
\if :n > 0
DELETE FROM handrolled WHERE id = :id::bigint;
\endif
