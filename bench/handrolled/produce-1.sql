-- produce-1 (hand-rolled): one item per INSERT
INSERT INTO handrolled (payload) VALUES ('{"event":"order.created","order_id":1234567,"customer":"c-000042","amount_cents":4999,"currency":"EUR"}');
