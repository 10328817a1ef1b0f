-- wrk script: POST a fixed body with a bearer token. BODY_FILE names the
-- body, TOKEN the token (scope submit), CONTENT_TYPE its type (default
-- JSON Lines, for POST /v1/log/entries).
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/x-ndjson"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
