-- produce-100 (querator): 100 items per call (the jsonb[] batch form)
SELECT querator.queue_produce('bench', array_fill('{"event":"order.created","order_id":1234567,"customer":"c-000042","amount_cents":4999,"currency":"EUR"}'::jsonb, ARRAY[100]));
