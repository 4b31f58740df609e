-- cycle-1-tx (querator): lease 1 item and complete it in one transaction, the way most
-- job runners work (BEGIN and COMMIT are round trips of their own, as from a driver).
-- Same one-row guard as cycle-1 (README: guard).
BEGIN;
SELECT count(*) AS n, max(id) AS id FROM querator.queue_lease('bench', :client_id, 1) \gset
\if :n > 0
SELECT querator.queue_complete('bench', :id::bigint);
\endif
COMMIT;
