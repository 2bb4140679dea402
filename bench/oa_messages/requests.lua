-- wrk script for bench/oa_messages: replays pre-made, signed and encrypted WeChat pushes.
--
--   wrk -t1 -c64 -d10s --latency -s requests.lua http://127.0.0.1:PORT -- REQUESTS_FILE THREADS
--
-- REQUESTS_FILE holds records "<path length> <body length>\n<path with query><body>", written by
-- run.py. Every push carries its own MsgId, so the server must never see one twice: each wrk
-- thread takes its own contiguous slice of the file and counts how far it got. If a thread runs
-- past the end of its slice it wraps (the run is then worthless) and says so in `done`.
-- Every answer must be a 200 carrying an encrypted envelope; any other answer is counted as bad
-- (a server that swallows an error and answers "" or "success" with a 200 is caught here).
-- Lua 5.1 / LuaJIT compatible (Debian's wrk).

local counter = 0
local threads = {}

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local function load_records(path)
   local fh = assert(io.open(path, "rb"))
   local data = fh:read("*a")
   fh:close()
   local records = {}
   local pos = 1
   local size = #data
   while pos <= size do
      local eol = string.find(data, "\n", pos, true)
      if not eol then break end
      local header = string.sub(data, pos, eol - 1)
      local plen, blen = string.match(header, "^(%d+) (%d+)$")
      plen, blen = tonumber(plen), tonumber(blen)
      assert(plen and blen, "bad record header at byte " .. pos)
      local path = string.sub(data, eol + 1, eol + plen)
      local body = string.sub(data, eol + plen + 1, eol + plen + blen)
      table.insert(records, {path, body})
      pos = eol + plen + blen + 1
   end
   return records
end

function init(args)
   local records = load_records(args[1])
   local nthreads = tonumber(args[2]) or 1
   local per = math.floor(#records / nthreads)
   local first = id * per + 1
   local last = first + per - 1
   local headers = {["Content-Type"] = "text/xml; charset=utf-8"}
   pool = {}
   for i = first, last do
      local r = records[i]
      -- wrk.format adds Host and Content-Length; copy the headers since it writes into them.
      local h = {}
      for k, v in pairs(headers) do h[k] = v end
      table.insert(pool, wrk.format("POST", r[1], h, r[2]))
   end
   records = nil
   slice = #pool
   sent = 0
   wraps = 0
   bad = 0
   cursor = 0
end

function request()
   cursor = cursor + 1
   if cursor > slice then
      cursor = 1
      wraps = wraps + 1
   end
   sent = sent + 1
   return pool[cursor]
end

function response(status, headers, body)
   if status ~= 200 or not string.find(body, "<Encrypt>", 1, true) then
      bad = bad + 1
   end
end

function done(summary, latency, requests)
   local sent_total, wraps_total, slice_total, bad_total = 0, 0, 0, 0
   for _, thread in ipairs(threads) do
      sent_total = sent_total + thread:get("sent")
      wraps_total = wraps_total + thread:get("wraps")
      slice_total = slice_total + thread:get("slice")
      bad_total = bad_total + thread:get("bad")
   end
   local e = summary.errors
   io.write(string.format(
      "BENCH_RESULT requests=%d duration_us=%d bytes=%d sent=%d pool=%d wraps=%d bad=%d "
      .. "connect=%d read=%d write=%d status=%d timeout=%d "
      .. "p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.1f\n",
      summary.requests, summary.duration, summary.bytes, sent_total, slice_total, wraps_total,
      bad_total,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean))
end
