-- http_users.lua -- wrk script for tools/bench/http_vs_peers.sh: a steady working set
-- of USERS_N (default 1000) users on tenure-server's /users/:name.  Every request is a
-- PUT of a small JSON user (replacing the old value: garbage) or a GET of one, on a
-- name picked at random among the USERS_N; PUT_PCT (default 50) % are PUTs.  The map
-- therefore holds at most USERS_N users however long the run: live data stays bounded
-- and everything else a request makes is garbage.
-- Statuses are counted: 200/201 are ok, a GET may answer 404 until its name was PUT
-- once (counted apart, as "miss"); anything else is "bad".  done() prints one line
--   USERS n=<responses> put=<n> get=<n> miss=<n> bad=<n> users=<USERS_N>
-- (wrk -t1: one thread, so the counters of that thread are the totals.)
local N = tonumber(os.getenv("USERS_N") or "1000")
local PUT_PCT = tonumber(os.getenv("PUT_PCT") or "50")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  seq, nput, nget, miss, bad, nresp = 0, 0, 0, 0, 0, 0
  last = {}
end

local hdr = { ["Content-Type"] = "application/json" }

function request()
  seq = seq + 1
  local i = math.random(N)
  local path = "/users/u" .. i
  if math.random(100) <= PUT_PCT then
    nput = nput + 1
    local body = string.format(
      '{"name":"u%d","email":"u%d@example.com","visits":%d,"tags":["a","b","c"],"profile":{"age":%d,"city":"Paris"}}',
      i, i, seq, 20 + i % 50)
    return wrk.format("PUT", path, hdr, body)
  end
  nget = nget + 1
  return wrk.format("GET", path)
end

function response(status, headers, body)
  nresp = nresp + 1
  if status == 404 then
    miss = miss + 1
  elseif status ~= 200 and status ~= 201 then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local t = { n = 0, put = 0, get = 0, miss = 0, bad = 0 }
  for _, th in ipairs(threads) do
    t.n = t.n + (th:get("nresp") or 0)
    t.put = t.put + (th:get("nput") or 0)
    t.get = t.get + (th:get("nget") or 0)
    t.miss = t.miss + (th:get("miss") or 0)
    t.bad = t.bad + (th:get("bad") or 0)
  end
  io.write(string.format("USERS n=%d put=%d get=%d miss=%d bad=%d users=%d\n",
    t.n, t.put, t.get, t.miss, t.bad, N))
end
