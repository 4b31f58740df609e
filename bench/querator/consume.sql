-- steady / held-xmin consumer (querator): lease up to 10, complete what came;
-- on an empty queue back off 10 ms (the same polling as the hand-rolled consumer)
SELECT count(*) AS n, coalesce(array_agg(id), '{}') AS ids
  FROM querator.queue_lease('bench', :client_id, 10) \gset
\if :n > 0
SELECT querator.queue_complete('bench', :ids::bigint[]);
\else
\sleep 10 ms
\endif
