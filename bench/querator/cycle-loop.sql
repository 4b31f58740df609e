-- cycle-1-loop and cycle-100-loop (querator, -D batch=1 or 100): the recommended consumer loop, one call per batch: each
-- queue_complete_and_lease completes the batch the previous call leased and leases the
-- next (one round trip, one commit). :prev is that call's ids (-D prev={} to begin);
-- the aggregate makes one row for \gset; an empty lease sets prev to {}.
SELECT coalesce(array_agg(id), '{}') AS prev
  FROM querator.queue_complete_and_lease('bench', :client_id, :prev::bigint[], :batch) \gset
