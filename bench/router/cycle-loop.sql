-- cycle-1-loop (router benchmark, -D queue=... -D batch=1 -D prev={}): the consumer loop as
-- bench/querator/cycle-loop.sql, each call completing the batch the last one leased.
SELECT coalesce(array_agg(id), '{}') AS prev
  FROM querator.queue_complete_and_lease(:queue, :client_id, :prev::bigint[], :batch) \gset
