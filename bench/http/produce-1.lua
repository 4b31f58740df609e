-- produce-1 over HTTP (bench/http.py): one item per call, the payload of bench/querator/produce-1.sql.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("QUERATOR_KEY")
wrk.body = '{"queue_name":"bench","items":[{"encoding":"application/json","utf8":'
  .. '"{\\"event\\":\\"order.created\\",\\"order_id\\":1234567,\\"customer\\":\\"c-000042\\",'
  .. '\\"amount_cents\\":4999,\\"currency\\":\\"EUR\\"}"}]}'
