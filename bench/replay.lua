-- Shared by the wrk scripts of bench/ (oa_messages/requests.lua, identity/requests.lua,
-- membership/certify.lua): each loads it with
--
--   local replay = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "../replay.lua")
--
-- and gets wrk's setup() (numbers the threads, keeps them for done()), a reader of the records
-- file "<header>\n<payload>" the driver wrote, each thread's own contiguous slice of it replayed
-- in rotation (globals pool, slice, cursor, sent, wraps, bad, read back by done() through
-- thread:get), the plain "200 containing a substring" check and the BENCH_RESULT line.
-- Lua 5.1 / LuaJIT compatible (Debian's wrk).

local replay = {}

local counter = 0
replay.threads = {}

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(replay.threads, thread)
end

-- The records of FILE: read(header, data, start) returns the record whose payload starts at
-- data[start] and the payload's length, or nil for a malformed header.
function replay.load_records(path, read)
   local fh = assert(io.open(path, "rb"))
   local data = fh:read("*a")
   fh:close()
   local records = {}
   local pos = 1
   local size = #data
   while pos <= size do
      local eol = string.find(data, "\n", pos, true)
      if not eol then break end
      local record, length = read(string.sub(data, pos, eol - 1), data, eol + 1)
      assert(record and length, "bad record header at byte " .. pos)
      table.insert(records, record)
      pos = eol + length + 1
   end
   return records
end

-- wrk's init(args) for "-- FILE THREADS ...": this thread's slice of FILE's records, each
-- passed through prepare (if given), as the pool request() walks through.
function replay.init(args, read, prepare)
   local records = replay.load_records(args[1], read)
   local nthreads = tonumber(args[2]) or 1
   local per = math.floor(#records / nthreads)
   local first = id * per + 1
   pool = {}
   for i = first, first + per - 1 do
      local r = records[i]
      if prepare then r = prepare(r) end
      table.insert(pool, r)
   end
   records = nil
   slice = #pool
   cursor = 0
   sent = 0
   wraps = 0
   bad = 0
end

-- The next record of the pool, wrapping around (and counting it) at the end of the slice.
function replay.next()
   cursor = cursor + 1
   if cursor > slice then
      cursor = 1
      wraps = wraps + 1
   end
   sent = sent + 1
   return pool[cursor]
end

-- Counts an answer as bad unless it is a 200 whose body contains expect.
function replay.check(status, body, expect)
   if status ~= 200 or not string.find(body, expect, 1, true) then
      bad = bad + 1
   end
end

-- The sums over all threads of the named globals.
function replay.totals(names)
   local totals = {}
   for _, name in ipairs(names) do totals[name] = 0 end
   for _, thread in ipairs(replay.threads) do
      for _, name in ipairs(names) do
         totals[name] = totals[name] + thread:get(name)
      end
   end
   return totals
end

-- Writes the BENCH_RESULT line the driver parses: requests, duration and bytes, then fields
-- (a list of {name, integer}), wrk's error counts, the latency percentiles and tail.
function replay.report(summary, latency, fields, tail)
   local shown = ""
   for _, f in ipairs(fields) do
      shown = shown .. string.format("%s=%d ", f[1], f[2])
   end
   local e = summary.errors
   io.write(string.format(
      "BENCH_RESULT requests=%d duration_us=%d bytes=%d " .. shown
      .. "connect=%d read=%d write=%d status=%d timeout=%d "
      .. "p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.1f%s\n",
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean, tail or ""))
end

-- wrk's done() for a script that counts nothing beyond the shared globals.
function replay.done(summary, latency, requests)
   local t = replay.totals({"sent", "slice", "wraps", "bad"})
   replay.report(summary, latency,
                 {{"sent", t.sent}, {"pool", t.slice}, {"wraps", t.wraps}, {"bad", t.bad}})
end

return replay
