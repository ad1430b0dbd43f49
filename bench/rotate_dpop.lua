-- wrk: refresh-token rotation chains with DPoP: as rotate.lua, and each request carries the
-- next proof from BENCH_PROOFS (one per line, made ahead of time by dpop_proofs.mjs with the
-- key the families are bound to; each thread takes its own share).

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

local function share(path)
   local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
   local mine = {}
   local i = 0
   for line in io.lines(path) do
      if i % nthreads == id - 1 then table.insert(mine, line) end
      i = i + 1
   end
   return mine
end

function init(args)
   queue = share(os.getenv("BENCH_TOKENS"))
   proofs = share(os.getenv("BENCH_PROOFS"))
   next_proof = 1
   basic = os.getenv("BENCH_BASIC")
   failures = 0
end

function request()
   local token = table.remove(queue, 1) or "tsr_missing"
   local proof = proofs[next_proof] or "no-proof-left"
   next_proof = next_proof + 1
   return wrk.format("POST", "/token", {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = basic,
      ["DPoP"] = proof,
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
