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

-- The shared replay code, bench/replay.lua (one directory up from this script).
local replay = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "../replay.lua")

local function read(header, data, start)
   local plen, blen = string.match(header, "^(%d+) (%d+)$")
   plen, blen = tonumber(plen), tonumber(blen)
   if not (plen and blen) then return nil end
   local path = string.sub(data, start, start + plen - 1)
   local body = string.sub(data, start + plen, start + plen + blen - 1)
   return {path, body}, plen + blen
end

local headers = {["Content-Type"] = "text/xml; charset=utf-8"}

local function prepare(r)
   -- wrk.format adds Host and Content-Length; copy the headers since it writes into them.
   local h = {}
   for k, v in pairs(headers) do h[k] = v end
   return wrk.format("POST", r[1], h, r[2])
end

function init(args)
   replay.init(args, read, prepare)
end

request = replay.next

function response(status, headers, body)
   replay.check(status, body, "<Encrypt>")
end

done = replay.done
