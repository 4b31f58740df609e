-- produce-1 (querator): one item per call
SELECT querator.queue_produce('bench', '{"event":"order.created","order_id":1234567,"customer":"c-000042","amount_cents":4999,"currency":"EUR"}'::jsonb);
