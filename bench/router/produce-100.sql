-- produce-100 (router benchmark, -D queue=...): 100 items per call, as bench/querator/produce-100.sql
SELECT querator.queue_produce(:queue, array_fill('{"event":"order.created","order_id":1234567,"customer":"c-000042","amount_cents":4999,"currency":"EUR"}'::jsonb, ARRAY[100]));
