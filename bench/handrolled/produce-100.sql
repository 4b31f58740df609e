-- produce-100 (hand-rolled): 100 rows per INSERT
INSERT INTO handrolled (payload) SELECT '{"event":"order.created","order_id":1234567,"customer":"c-000042","amount_cents":4999,"currency":"EUR"}' FROM generate_series(1, 100);
