-- wrk script: POST CheckPerformTransaction to /payme with Payme's Basic auth.
-- Inputs come from the environment (set by scripts/bench/payme_wrk.sh):
--   PAYME_BODY   the JSON-RPC body
--   PAYME_AUTH   "Basic base64(Paycom:<key>)"
--   WRK_CHECK    "0" to skip checking each reply (default: every reply must be HTTP 200 with "allow":true)
wrk.method = "POST"
wrk.body = os.getenv("PAYME_BODY")
wrk.headers["Content-Type"] = "text/json; charset=UTF-8"
wrk.headers["Authorization"] = os.getenv("PAYME_AUTH")

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
end

if os.getenv("WRK_CHECK") ~= "0" then
  function response(status, headers, body)
    if status ~= 200 or not string.find(body, '"allow":true', 1, true) then
      bad = bad + 1
    end
  end
end

function done(summary, latency, requests)
  local errors = 0
  for _, t in ipairs(threads) do
    errors = errors + (t:get("bad") or 0)
  end
  local seconds = summary.duration / 1e6
  io.write("--- machine-readable ---\n")
  io.write(string.format("requests %d\n", summary.requests))
  io.write(string.format("req_per_s %.1f\n", summary.requests / seconds))
  io.write(string.format("rpc_errors %d\n", errors))
  io.write(string.format("socket_errors %d\n", summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout))
  io.write(string.format("non_2xx %d\n", summary.errors.status))
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("latency_p%s_ms %.3f\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("latency_max_ms %.3f\n", latency.max / 1000))
end
