-- wrk script for bench/membership/certify.py: replays pre-made certification requests, one per
-- request, and checks every answer against what that request must get.
--
--   wrk -t1 -c64 -d10s --latency -s certify.lua http://127.0.0.1:PORT -- FILE THREADS MODE
--
-- FILE holds records "<kind> <member_no or -> <length>\n<raw HTTP/1.1 request>", written by
-- certify.py. kind F: a first certification (a new account and a member nobody certified yet),
-- R: a repeat by an account that already certified that member, both answered 200 with that
-- member's record; M: a miss (a valid ID number absent from the roster), answered 400
-- certify_no_match. wrk's response() does not say which request an answer belongs to, so each
-- request sent registers what is owed: a 200 for its member_no, or a 400 miss; `ok_first`
-- counts the 200s that settled a first certification. An answer that
-- settles nothing owed (another status, a 200 for a member no request in flight asked for, a
-- 200 without "certified": true, a 400 with another code) is counted as bad.
-- Each wrk thread takes its own contiguous slice of the file and walks through it; MODE "once"
-- (pools with first certifications or misses): run.py fails a run that wrapped; "cycle"
-- (repeats only, which change nothing): wrapping is allowed.
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
      local kind, tag, length = string.match(string.sub(data, pos, eol - 1), "^(%u) (%S+) (%d+)$")
      length = tonumber(length)
      assert(kind and length, "bad record header at byte " .. pos)
      table.insert(records, {kind, tag, string.sub(data, eol + 1, eol + length)})
      pos = eol + length + 1
   end
   return records
end

function init(args)
   local records = load_records(args[1])
   local nthreads = tonumber(args[2]) or 1
   local per = math.floor(#records / nthreads)
   local first = id * per + 1
   pool = {}
   for i = first, first + per - 1 do
      table.insert(pool, records[i])
   end
   records = nil
   slice = #pool
   cursor = 0
   sent = 0
   sent_first = 0
   wraps = 0
   bad = 0
   ok_member = 0
   ok_miss = 0
   owed = {}        -- member_no of a repeat -> 200s owed for it
   owed_first = {}  -- member_no of a first certification -> true while its 200 is owed
   ok_first = 0
   owed_miss = 0    -- 400 certify_no_match owed
   bad_status = {}  -- status -> count of bad answers
end

function request()
   cursor = cursor + 1
   if cursor > slice then
      cursor = 1
      wraps = wraps + 1
   end
   sent = sent + 1
   local r = pool[cursor]
   if r[1] == "M" then
      owed_miss = owed_miss + 1
   elseif r[1] == "F" then
      owed_first[r[2]] = true
      sent_first = sent_first + 1
   else
      owed[r[2]] = (owed[r[2]] or 0) + 1
   end
   return r[3]
end

function response(status, headers, body)
   if status == 200 then
      local no = string.match(body, '"member_no": "([^"]+)"')
      if no and string.find(body, '"certified": true', 1, true) then
         if owed_first[no] then
            owed_first[no] = nil
            ok_first = ok_first + 1
            ok_member = ok_member + 1
            return
         end
         local n = owed[no]
         if n and n > 0 then
            if n == 1 then owed[no] = nil else owed[no] = n - 1 end
            ok_member = ok_member + 1
            return
         end
      end
   elseif status == 400 and owed_miss > 0
         and string.find(body, '"code": "certify_no_match"', 1, true) then
      owed_miss = owed_miss - 1
      ok_miss = ok_miss + 1
      return
   end
   bad = bad + 1
   bad_status[status] = (bad_status[status] or 0) + 1
end

function done(summary, latency, requests)
   local sent_total, first_total, wraps_total, slice_total, bad_total = 0, 0, 0, 0, 0
   local member_total, miss_total, first_ok_total = 0, 0, 0
   local statuses = {}
   for _, thread in ipairs(threads) do
      sent_total = sent_total + thread:get("sent")
      first_total = first_total + thread:get("sent_first")
      wraps_total = wraps_total + thread:get("wraps")
      slice_total = slice_total + thread:get("slice")
      bad_total = bad_total + thread:get("bad")
      member_total = member_total + thread:get("ok_member")
      miss_total = miss_total + thread:get("ok_miss")
      first_ok_total = first_ok_total + thread:get("ok_first")
      for status, n in pairs(thread:get("bad_status")) do
         statuses[status] = (statuses[status] or 0) + n
      end
   end
   local shown = ""
   for status, n in pairs(statuses) do
      shown = shown .. string.format(" bad_status_%d=%d", status, n)
   end
   local e = summary.errors
   io.write(string.format(
      "BENCH_RESULT requests=%d duration_us=%d bytes=%d sent=%d sent_first=%d pool=%d wraps=%d "
      .. "bad=%d ok_member=%d ok_first=%d ok_miss=%d connect=%d read=%d write=%d status=%d timeout=%d "
      .. "p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.1f%s\n",
      summary.requests, summary.duration, summary.bytes, sent_total, first_total, slice_total,
      wraps_total, bad_total, member_total, first_ok_total, miss_total,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean, shown))
end
