-- wrk: one fixed request. Env: BENCH_METHOD, BENCH_BODY, BENCH_AUTH (Authorization value).
wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.body = os.getenv("BENCH_BODY")
if wrk.body and wrk.body ~= "" then
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
