-- wrk: apps that sign in, then refresh for as long as their family lives, then sign in again.
-- Each connection holds one refresh token; a refused refresh (the family ended) drops it, and
-- the next request is a password grant that starts a new family.
-- Env: BENCH_BASIC (Authorization value), BENCH_LOGIN (the password grant's form body).

function init(args)
   basic = os.getenv("BENCH_BASIC")
   login = os.getenv("BENCH_LOGIN")
   queue = {}
   failures = 0
end

function request()
   local token = table.remove(queue, 1)
   local body = login
   if token ~= nil then
      body = "grant_type=refresh_token&refresh_token=" .. token
   end
   return wrk.format("POST", "/token", {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = basic,
   }, body)
end

function response(status, headers, body)
   local token = string.match(body, '"refresh_token":"(tsr_[^"]+)"')
   if token then
      table.insert(queue, token)
   elseif status ~= 400 then
      -- 400 is a family that ended, as expected; anything else is an error.
      failures = failures + 1
   end
end
