-- handrolled-cycle-1-cte: the best a hand-written table can do for a consumer loop: one
-- statement (one round trip, one commit) deletes the row leased by the previous call and
-- leases the next. :prev is that row's id; the runner starts every client with -D prev=0,
-- and a pgbench client keeps its variables from one transaction to the next. The row
-- being deleted is not leasable (its vt is in the future), so the two never meet.
-- The aggregate makes one row for \gset; an empty lease sets prev to 0.
WITH done AS (
  DELETE FROM handrolled WHERE id = :prev::bigint),
leased AS (
  UPDATE handrolled SET vt = now() + interval '1 minute', read_ct = read_ct + 1
   WHERE id IN (SELECT id FROM handrolled WHERE vt <= now()
                 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING id, payload)
SELECT coalesce(max(id), 0) AS prev FROM leased \gset
