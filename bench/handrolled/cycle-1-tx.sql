-- cycle-1-tx (hand-rolled): lease 1 row (SKIP LOCKED) and delete it in one transaction.
-- Same one-row guard as querator's script.
BEGIN;
WITH leased AS (
  UPDATE handrolled SET vt = now() + interval '1 minute', read_ct = read_ct + 1
   WHERE id IN (SELECT id FROM handrolled WHERE vt <= now()
                 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING id, payload)
SELECT count(*) AS n, max(id) AS id FROM leased \gset
\if :n > 0
DELETE FROM handrolled WHERE id = :id::bigint;
\endif
COMMIT;
