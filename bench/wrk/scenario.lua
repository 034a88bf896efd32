-- One benchmark scenario for wrk (one thread): requests come from a file written by
-- bench/run.py, one per line, tab-separated: METHOD, PATH, BODY, then "Name: value"
-- headers.
--   wrk -t1 -c16 -d10s -s scenario.lua URL -- MODE FILE OUT
-- MODE
--   cycle    reuse the requests round-robin (userinfo, introspection, logins, ...)
--   once     send each request once (single-use authorization codes); when the file is
--            used up the thread stops and the time is recorded, so run.py divides by
--            the time actually spent, not by the full duration
--   chain    refresh tokens: each 200 response's new refresh_token replaces the one
--            just used (rotation), so the pool never runs dry
--   collect  authorization requests: the code in each redirect's Location is appended
--            to OUT (run.py stops wrk once it has enough)
-- done() writes one JSON object of results to OUT (collect: no summary).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } bench_timeval;
int gettimeofday(bench_timeval *tv, void *tz);
]]

local function now()
  local tv = ffi.new("bench_timeval")
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) + tonumber(tv.tv_usec) / 1e6
end

local function split(line, sep)
  local out = {}
  for field in (line .. sep):gmatch("(.-)" .. sep) do
    out[#out + 1] = field
  end
  return out
end

local function parse(line)
  local f = split(line, "\t")
  local headers = {}
  for i = 4, #f do
    local name, value = f[i]:match("^([^:]+):%s*(.*)$")
    if name then headers[name] = value end
  end
  return f[1], f[2], f[3], headers
end

local thread_ref
function setup(thread)
  thread_ref = thread
end

function init(args)
  mode, out_path = args[1], args[3]
  pool, pos, used, started_at, exhausted_at = {}, 0, 0, now(), 0
  statuses = {}
  local first = true
  for line in io.lines(args[2]) do
    if #line > 0 then
      local method, path, body, headers = parse(line)
      if first then
        base_method, base_path, base_headers, first = method, path, headers, false
      end
      pool[#pool + 1] = wrk.format(method, path, headers, body ~= "" and body or nil)
    end
  end
  if mode == "collect" then
    collected = io.open(out_path, "a")
    collected:setvbuf("line")
  end
end

function request()
  if mode == "cycle" or mode == "collect" then
    pos = pos % #pool + 1
    used = used + 1
    return pool[pos]
  end
  if pos >= #pool then
    if exhausted_at == 0 then
      exhausted_at = now()
      wrk.thread:stop()
    end
    -- The thread is stopping: a harmless request that no result counts.
    return wrk.format("GET", "/.well-known/openid-configuration")
  end
  pos = pos + 1
  used = used + 1
  local req = pool[pos]
  pool[pos] = false
  return req
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if mode == "chain" and status == 200 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      pool[#pool + 1] = wrk.format(base_method, base_path, base_headers,
        "grant_type=refresh_token&refresh_token=" .. token)
    end
  elseif mode == "collect" then
    local location = headers["Location"] or headers["location"]
    local code = location and location:match("[?&]code=([^&]+)")
    if code then collected:write(code, "\n") end
  end
end

function done(summary, latency, requests)
  -- done() runs in wrk's main Lua state: the thread's globals are read through get().
  if thread_ref:get("mode") == "collect" then return end
  local status_parts = {}
  for code, count in pairs(thread_ref:get("statuses") or {}) do
    status_parts[#status_parts + 1] = string.format('"%d": %d', code, count)
  end
  local e = summary.errors
  local f = io.open(thread_ref:get("out_path"), "w")
  f:write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d}, "latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, ' ..
    '"mean": %.1f}, "used": %d, "started_at": %.6f, "exhausted_at": %.6f, "statuses": {%s}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    thread_ref:get("used"), thread_ref:get("started_at"), thread_ref:get("exhausted_at"),
    table.concat(status_parts, ", ")))
  f:close()
end
