-- wrk script: POSTs one fixed, pre-signed body. wrk cannot compute an HMAC per
-- request, so run.sh signs the body once and passes it in the environment:
--   BODY_FILE      the request body
--   HEADER_NAME    the signature header (X-Sluice-Signature, X-Telegram-Bot-Api-Secret-Token)
--   HEADER_VALUE   its value
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers[os.getenv("HEADER_NAME")] = os.getenv("HEADER_VALUE")

local statuses = {}

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("p50=%.2fms p90=%.2fms p99=%.2fms max=%.2fms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("non-2xx/3xx: %d, socket errors: connect %d read %d write %d timeout %d\n",
    summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
