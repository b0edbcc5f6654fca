-- wrk driver shared by the benchmarks in bench/ (written for, and run by, bench/_support.py).
--
-- WRK_PLAN names a plan file of tab-separated lines:
--   H <name> <value>                              a header sent with every request
--   P <prefix>                                    prefix of the @@SEQ@@ values
--   R <thread> <method> <path> <ctype|-> <body|-> a request; <thread> -1 means any thread
-- Each wrk thread cycles through its own R lines (or the -1 ones when it has none), in
-- order. "@@SEQ@@" in a path or body becomes <prefix><thread>-<n>, unique per request.
-- done() prints one line: RESULT {json}, with the status codes seen and one non-2xx body.

local SEQ = "@@SEQ@@"
local threads = {}
local next_id = 0

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do fields[#fields + 1] = field end
  return fields
end

local function slurp(path)
  local f = io.open(path, "rb")
  assert(f, "can not open " .. path)
  local data = f:read("*a")
  f:close()
  return data
end

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  sample = ""
  local headers, mine, shared = {}, {}, {}
  prefix = ""
  seq = 0
  local plan = os.getenv("WRK_PLAN")
  assert(plan, "set WRK_PLAN")
  for line in io.lines(plan) do
    local f = split(line)
    if f[1] == "H" then
      headers[f[2]] = f[3]
    elseif f[1] == "P" then
      prefix = f[2]
    elseif f[1] == "R" then
      local r = {thread = tonumber(f[2]), method = f[3], path = f[4], ctype = f[5], body = nil}
      if f[6] ~= "-" then r.body = slurp(f[6]) end
      if r.thread == thread_id then mine[#mine + 1] = r else
        if r.thread == -1 then shared[#shared + 1] = r end
      end
    end
  end
  reqs = (#mine > 0) and mine or shared
  assert(#reqs > 0, "no request in the plan for thread " .. thread_id)
  for _, r in ipairs(reqs) do
    r.headers = {}
    for k, v in pairs(headers) do r.headers[k] = v end
    if r.ctype ~= "-" then r.headers["Content-Type"] = r.ctype end
    local templated = r.path:find(SEQ, 1, true) or (r.body and r.body:find(SEQ, 1, true))
    if not templated then r.raw = wrk.format(r.method, r.path, r.headers, r.body) end
  end
  idx = 0
end

function request()
  idx = idx % #reqs + 1
  local r = reqs[idx]
  if r.raw then return r.raw end
  seq = seq + 1
  local tag = prefix .. thread_id .. "-" .. seq
  local path = r.path:gsub(SEQ, tag)
  local body = r.body and r.body:gsub(SEQ, tag)
  return wrk.format(r.method, path, r.headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if (status < 200 or status > 299) and sample == "" then sample = string.sub(body or "", 1, 400) end
end

local function jstr(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function done(summary, latency, requests)
  local st, samp = {}, ""
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do st[k] = (st[k] or 0) + v end
    local s = t:get("sample")
    if s ~= "" then samp = s end
  end
  local parts = {}
  for k, v in pairs(st) do parts[#parts + 1] = '"' .. k .. '":' .. v end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    'RESULT {"requests":%d,"duration_s":%.3f,"rps":%.2f,"p50_ms":%.3f,"p90_ms":%.3f,'
      .. '"p99_ms":%.3f,"max_ms":%.3f,"errors":{"connect":%d,"read":%d,"write":%d,'
      .. '"timeout":%d},"statuses":{%s},"sample":%s}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.timeout, table.concat(parts, ","), jstr(samp)))
end
