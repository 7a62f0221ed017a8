-- mix.lua — wrk script for the soak: the requests apikeyd sees in a day,
-- in turn: a valid key (/auth, header and query, with scopes), keys that
-- are refused (unknown, malformed, revoked, wrong scope), /v1/verify,
-- /v1/whoami, OPTIONS, /healthz, /readyz, /metrics, 404s with a key-like
-- path.  $KEY is a valid key (scopes docs:read), $REVOKED a revoked one.
-- At full speed $KEY uses up its 1,000,000 a minute after about five
-- minutes: 429s from then on, as they should be.  No HEAD: wrk's parser
-- does not know a HEAD answer has no body, and a 429's Content-Length
-- (of the body a GET would get) makes it wait for bytes that never come.
local reqs = {}
local n = 0

function init(args)
  local k, r = os.getenv("KEY"), os.getenv("REVOKED")
  local unknown = "ak_" .. string.rep("Q", 30) .. "AAAAAA"
  local body = '{"key":"' .. k .. '","scopes":["docs:read"]}'
  reqs = {
    wrk.format("GET", "/auth", {["X-API-Key"] = k}),
    wrk.format("GET", "/auth?scope=docs:read", {["Authorization"] = "Bearer " .. k}),
    wrk.format("GET", "/auth/api/docs/1", {["X-API-Key"] = k, ["X-Required-Scope"] = "docs:read"}),
    wrk.format("GET", "/auth", {["X-API-Key"] = k, ["X-Required-Scope"] = "admin:all"}),
    wrk.format("GET", "/auth", {["X-API-Key"] = unknown}),
    wrk.format("GET", "/auth", {["X-API-Key"] = "ak_not_a_key"}),
    wrk.format("GET", "/auth", {["X-API-Key"] = r}),
    wrk.format("GET", "/auth"),
    wrk.format("POST", "/v1/verify", {["Content-Type"] = "application/json"}, body),
    wrk.format("GET", "/v1/whoami", {["X-API-Key"] = k}),
    wrk.format("OPTIONS", "/auth", {["X-API-Key"] = k}),
    wrk.format("GET", "/healthz"),
    wrk.format("GET", "/readyz"),
    wrk.format("GET", "/nope/" .. k),
    wrk.format("GET", "/auth", {["X-API-Key"] = k}),
    wrk.format("GET", "/auth", {["X-API-Key"] = k}),
  }
end

function request()
  n = n + 1
  if n % 1000 == 0 then return wrk.format("GET", "/metrics") end
  return reqs[(n % #reqs) + 1]
end
