-- cycle-1 over HTTP (bench/http.py): lease 1 item, then complete it; two calls, as
-- bench/querator/cycle-1.sql. Run with one connection per thread (-t = -c): a thread's
-- Lua state is then one client's, and wrk asks for the next request after the response.
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("QUERATOR_KEY")

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("number", threads)
end

local lease, pending
function init(args)
  lease = '{"queue_name":"bench","batch_size":1,"client_id":"wrk-' .. number .. '","request_timeout":"1s"}'
end

function request()
  if pending then
    local body = '{"queue_name":"bench","ids":["' .. pending .. '"]}'
    pending = nil
    return wrk.format("POST", "/v1/queue.complete", nil, body)
  end
  return wrk.format("POST", "/v1/queue.lease", nil, lease)
end

function response(status, headers, body)
  if status == 200 then
    pending = body:match('"id":"(%d+)"')
  end
end
