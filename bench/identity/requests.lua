-- wrk script for bench/identity: replays pre-made raw HTTP requests, one per request.
--
--   wrk -t1 -c64 -d10s --latency -s requests.lua http://127.0.0.1:PORT -- FILE THREADS MODE EXPECT
--
-- FILE holds records "<length>\n<raw HTTP/1.1 request>", written by run.py. Each wrk thread takes
-- its own contiguous slice of the file and replays it in rotation, counting how often it wrapped
-- (`done` reports it). MODE is for the record: with "once" every request may be sent only once (a
-- single-use wx.login code, a signed request with its own nonce), so run.py fails a run that
-- wrapped; with "cycle" (bearer tokens) wrapping is the point. Every answer must be a 200 whose
-- body contains EXPECT; any other answer is counted as bad.
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
      local length = tonumber(string.sub(data, pos, eol - 1))
      assert(length, "bad record header at byte " .. pos)
      table.insert(records, string.sub(data, eol + 1, eol + length))
      pos = eol + length + 1
   end
   return records
end

function init(args)
   local records = load_records(args[1])
   local nthreads = tonumber(args[2]) or 1
   expect = args[4] or ""
   local per = math.floor(#records / nthreads)
   local first = id * per + 1
   pool = {}
   for i = first, first + per - 1 do
      table.insert(pool, records[i])
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
   if status ~= 200 or not string.find(body, expect, 1, true) then
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
