-- wrk script for the service benchmark: the route mix, Zipf-distributed ids, pacing.
--
-- Environment (read once per thread):
--   MIX       "products:70,orders:10,auth:10,analytics:10" (weights)
--   PRODUCTS  number of product ids (Zipf over 1..PRODUCTS)
--   CUSTOMERS number of customer ids (uniform)
--   ZIPF_S    Zipf exponent
--   PACE_MS   delay before each request on a connection (0 = as fast as possible)
--   OUT       file the summary (JSON) is written to by done()
--
-- Each thread counts its own responses by status class; done() sums them.

local mix, total_weight = {}, 0
local cdf, products, customers, pace = {}, 1000, 100, 0
counts = {s2 = 0, s4 = 0, s429 = 0, s5 = 0, other = 0}  -- global: done() reads it per thread
local threads = {}

local function zipf_index()
  local u = math.random()
  local lo, hi = 1, products
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(1000 + id)
  for name, weight in string.gmatch(os.getenv("MIX") or "products:1", "(%a+):(%d+)") do
    total_weight = total_weight + tonumber(weight)
    table.insert(mix, {name = name, upto = total_weight})
  end
  products = tonumber(os.getenv("PRODUCTS") or "1000")
  customers = tonumber(os.getenv("CUSTOMERS") or "100")
  pace = tonumber(os.getenv("PACE_MS") or "0")
  local s = tonumber(os.getenv("ZIPF_S") or "1.0")
  local sum = 0
  for i = 1, products do sum = sum + 1 / (i ^ s) end
  local acc = 0
  for i = 1, products do
    acc = acc + 1 / (i ^ s) / sum
    cdf[i] = acc
  end
  cdf[products] = 1.0
end

function delay()
  return pace
end

function request()
  local r = math.random() * total_weight
  local route = mix[#mix].name
  for _, m in ipairs(mix) do
    if r <= m.upto then route = m.name break end
  end
  if route == "products" then
    return wrk.format("GET", "/products/" .. zipf_index())
  elseif route == "orders" then
    return wrk.format("GET", "/customers/" .. math.random(1, customers) .. "/orders")
  elseif route == "auth" then
    return wrk.format("GET", "/auth/check")
  else
    return wrk.format("GET", "/analytics")
  end
end

function response(status, headers, body)
  if status >= 200 and status < 300 then counts.s2 = counts.s2 + 1
  elseif status == 429 then counts.s429 = counts.s429 + 1
  elseif status >= 400 and status < 500 then counts.s4 = counts.s4 + 1
  elseif status >= 500 then counts.s5 = counts.s5 + 1
  else counts.other = counts.other + 1 end
end

function done(summary, latency, requests)
  local sums = {s2 = 0, s4 = 0, s429 = 0, s5 = 0, other = 0}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for k, v in pairs(c) do sums[k] = sums[k] + v end
  end
  local e = summary.errors
  local out = io.open(os.getenv("OUT") or "/dev/stdout", "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "ok": %d, "client_errors": %d, "limited": %d, ' ..
    '"server_errors": %d, "other": %d, "socket_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, "p999_us": %d, ' ..
    '"mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, sums.s2, sums.s4, sums.s429, sums.s5, sums.other,
    e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency:percentile(99.9), latency.mean, latency.max))
  out:close()
end
