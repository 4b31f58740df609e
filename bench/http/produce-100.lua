-- produce-100 over HTTP (bench/http.py): 100 items per call, the payload of bench/querator/produce-100.sql.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("QUERATOR_KEY")
local item = '{"encoding":"application/json","utf8":'
  .. '"{\\"event\\":\\"order.created\\",\\"order_id\\":1234567,\\"customer\\":\\"c-000042\\",'
  .. '\\"amount_cents\\":4999,\\"currency\\":\\"EUR\\"}"}'
local items = {}
for i = 1, 100 do items[i] = item end
wrk.body = '{"queue_name":"bench","items":[' .. table.concat(items, ",") .. ']}'
