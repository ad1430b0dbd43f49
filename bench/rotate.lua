-- wrk: refresh-token rotation chains. Each request presents a refresh token returned by an
-- earlier response; each thread owns its own families (distinct chains), given by setup().
-- Env: BENCH_TOKENS (file, one refresh token per line), BENCH_BASIC (Authorization value);
-- BENCH_PROOFS, optional: DPoP proofs made ahead of time by dpop_proofs.mjs with the key the
-- families are bound to (one per line), one sent with each request.

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

-- This thread's share of the lines of `path`.
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
   local proofs_file = os.getenv("BENCH_PROOFS")
   proofs = proofs_file and share(proofs_file)
   next_proof = 1
   basic = os.getenv("BENCH_BASIC")
   failures = 0
end

function request()
   local token = table.remove(queue, 1)
   if token == nil then
      -- Only if a chain broke (a failed response returns no token): counted as an error.
      token = "tsr_missing"
   end
   local headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = basic,
   }
   if proofs then
      headers["DPoP"] = proofs[next_proof] or "no-proof-left"
      next_proof = next_proof + 1
   end
   return wrk.format("POST", "/token", headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
   local token = string.match(body, '"refresh_token":"(tsr_[^"]+)"')
   if token then
      table.insert(queue, token)
   else
      failures = failures + 1
   end
end
