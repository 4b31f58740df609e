-- produce-1 (router benchmark, -D queue=...): one item per call, as bench/querator/produce-1.sql
SELECT querator.queue_produce(:queue, '{"event":"order.created","order_id":1234567,"customer":"c-000042","amount_cents":4999,"currency":"EUR"}'::jsonb);
