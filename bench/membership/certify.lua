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

-- The shared replay code, bench/replay.lua (one directory up from this script).
local replay = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "../replay.lua")

local function read(header, data, start)
   local kind, tag, length = string.match(header, "^(%u) (%S+) (%d+)$")
   length = tonumber(length)
   if not (kind and length) then return nil end
   return {kind, tag, string.sub(data, start, start + length - 1)}, length
end

function init(args)
   replay.init(args, read)
   sent_first = 0
   ok_member = 0
   ok_miss = 0
   owed = {}        -- member_no of a repeat -> 200s owed for it
   owed_first = {}  -- member_no of a first certification -> true while its 200 is owed
   ok_first = 0
   owed_miss = 0    -- 400 certify_no_match owed
   bad_status = {}  -- status -> count of bad answers
end

function request()
   local r = replay.next()
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
   local t = replay.totals({"sent", "sent_first", "slice", "wraps", "bad", "ok_member", "ok_first",
                            "ok_miss"})
   local statuses = {}
   for _, thread in ipairs(replay.threads) do
      for status, n in pairs(thread:get("bad_status")) do
         statuses[status] = (statuses[status] or 0) + n
      end
   end
   local shown = ""
   for status, n in pairs(statuses) do
      shown = shown .. string.format(" bad_status_%d=%d", status, n)
   end
   replay.report(summary, latency,
                 {{"sent", t.sent}, {"sent_first", t.sent_first}, {"pool", t.slice},
                  {"wraps", t.wraps}, {"bad", t.bad}, {"ok_member", t.ok_member},
                  {"ok_first", t.ok_first}, {"ok_miss", t.ok_miss}},
                 shown)
end
