-- phases.lua — wrk script for the reliability tests: GET /auth with the key
-- in $KEY on every request, and the number of responses in each second of
-- the run, printed at the end as "second count" lines (for comparing the
-- throughput of one phase of a run with another's).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  start = nil
  wrk.headers["X-API-Key"] = os.getenv("KEY")
  req = wrk.format("GET", "/auth")
end

function request()
  return req
end

function response(status, headers, body)
  if not start then start = os.time() end
  local s = os.time() - start
  counts[s] = (counts[s] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  local last = 0
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for s, n in pairs(c) do
      total[s] = (total[s] or 0) + n
      if s > last then last = s end
    end
  end
  for s = 0, last do
    io.write(string.format("second %d %d\n", s, total[s] or 0))
  end
end
