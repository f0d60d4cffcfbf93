-- flow_rolling.lua -- the peers' session flow (session_express/flow.lua, loaded unchanged from
-- $FLOW_LUA) for a server whose sessions are rolling: such a server renews the cookie on every
-- answer, so GET /me answers carry "Set-Cookie: sid=<the same id>" too.  flow.lua takes any
-- 200 with a user and a sid cookie for a login answer, and its flow then degenerates (every
-- /me answer "logs in" the user again: no logouts, only GET /me).  This wrapper hides from
-- flow.lua's response() a Set-Cookie that repeats the cookie the user already holds (the same
-- sid=value as that user's login answer); a login answer (a user seen for the first time, or
-- a new id) is passed as it is.  Requests, counts and the FLOW line are flow.lua's own; the
-- wrapper adds one line, "ROLLING renewed=N" (answers whose repeated cookie it hid).
-- For a server that does not renew (express-session with rolling: false) it changes nothing.
--   wrk -t1 -c64 -d10s --latency -s tools/bench/flow_rolling.lua URL   (FLOW_LUA=.../flow.lua)
local path = os.getenv("FLOW_LUA")
if not path or path == "" then error("flow_rolling.lua: set FLOW_LUA to the peers' flow.lua") end
dofile(path)

local inner_response, inner_setup, inner_done = response, setup, done
local cookie_of = {}     -- user id -> "sid=..." of its login answer
renewed = 0              -- global: done() reads it through thread:get()

response = function(status, headers, body)
  if status == 200 and body then
    local id = body:match('"user":"u(%d+)"')
    local sc = headers["Set-Cookie"] or headers["set-cookie"]
    if id and sc then
      local c = sc:match("^([^;]+)")
      if cookie_of[id] == c then
        renewed = renewed + 1
        local h = {}
        for k, v in pairs(headers) do
          if k ~= "Set-Cookie" and k ~= "set-cookie" then h[k] = v end
        end
        return inner_response(status, h, body)
      end
      cookie_of[id] = c
    end
  end
  return inner_response(status, headers, body)
end

local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  if inner_setup then inner_setup(thread) end
end

done = function(summary, latency, requests)
  if inner_done then inner_done(summary, latency, requests) end
  local n = 0
  for _, th in ipairs(threads) do n = n + (th:get("renewed") or 0) end
  io.write(string.format("ROLLING renewed=%d\n", n))
end
