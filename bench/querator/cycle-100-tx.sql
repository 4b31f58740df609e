-- cycle-100-tx (querator): lease 100 items and complete them in one transaction
BEGIN;
SELECT count(*) AS n, array_agg(id) AS ids FROM querator.queue_lease('bench', :client_id, 100) \gset
\if :n > 0
SELECT querator.queue_complete('bench', :ids::bigint[]);
\endif
COMMIT;
