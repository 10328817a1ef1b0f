-- wrk script: POST /v1/log/entries with a JSON Lines body of events.
-- BODY_FILE names the body, TOKEN the bearer token (scope submit).
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/x-ndjson"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
