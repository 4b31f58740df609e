-- cycle-1-loop and cycle-100-loop (hand-rolled, -D batch=1 or 100): the best a hand-written table can do for a consumer loop:
-- one statement (one round trip, one commit) deletes the rows leased by the previous
-- call and leases the next. :prev is that call's ids; the runner starts every client
-- with -D prev={}, and a pgbench client keeps its variables from one transaction to the
-- next. The rows being deleted are not leasable (their vt is in the future), so the two
-- never meet. The aggregate makes one row for \gset; an empty lease sets prev to {}.
WITH done AS (
  DELETE FROM handrolled WHERE id = ANY (:prev::bigint[])),
leased AS (
  UPDATE handrolled SET vt = now() + interval '1 minute', read_ct = read_ct + 1
   WHERE id IN (SELECT id FROM handrolled WHERE vt <= now()
                 ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED)
  RETURNING id, payload)
SELECT coalesce(array_agg(id), '{}') AS prev FROM leased \gset
