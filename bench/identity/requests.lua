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

-- The shared replay code, bench/replay.lua (one directory up from this script).
local replay = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "../replay.lua")

local function read(header, data, start)
   local length = tonumber(header)
   if not length then return nil end
   return string.sub(data, start, start + length - 1), length
end

function init(args)
   expect = args[4] or ""
   replay.init(args, read)
end

request = replay.next

function response(status, headers, body)
   replay.check(status, body, expect)
end

done = replay.done
