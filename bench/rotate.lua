-- wrk: refresh-token rotation chains. Each request presents a refresh token returned by an
-- earlier response; each thread owns its own families (distinct chains), given by setup().
-- Env: BENCH_TOKENS (file, one refresh token per line), BENCH_BASIC (Authorization value).

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

function init(args)
   local file = io.open(os.getenv("BENCH_TOKENS"), "r")
   local all = {}
   for line in file:lines() do table.insert(all, line) end
   file:close()
   local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
   queue = {}
   for i, token in ipairs(all) do
      if (i - 1) % nthreads == id - 1 then table.insert(queue, token) end
   end
   basic = os.getenv("BENCH_BASIC")
   failures = 0
end

function request()
   local token = table.remove(queue, 1)
   if token == nil then
      -- Only if a chain broke (a failed response returns no token): counted as an error.
      token = "tsr_missing"
   end
   return wrk.format("POST", "/token", {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = basic,
   }, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
   local token = string.match(body, '"refresh_token":"(tsr_[^"]+)"')
   if token then
      table.insert(queue, token)
   else
      failures = failures + 1
   end
end
