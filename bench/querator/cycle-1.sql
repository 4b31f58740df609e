-- cycle-1 (querator): lease 1 item, then complete it: two autocommit calls.
-- Also held-xmin-drain's consumer (bench/run).
-- \gset needs exactly one row and a lease may come back empty, so the result is
-- aggregated into one row and complete runs only when an item came (README: guard).
SELECT count(*) AS n, max(id) AS id FROM querator.queue_lease('bench', :client_id, 1) \gset
\if :n > 0
SELECT querator.queue_complete('bench', :id::bigint);
\endif
