-- wrk script for `make bench` (bench/run_all.py): one request shape per scenario, every write with a
-- unique Idempotency-Key and external id, every request with a device key (counter) or a customer's
-- JWT (wallet). Run as: wrk ... -s tessera.lua -- <scenario> <run id> <data file>
-- The data file (written by the harness) has one record a line:
--   set <name> <value>              (reward, pin, currency, amount)
--   device <key> <cashier id>       (the cashier signs redemptions made on this till)
--   card <id> <number> <token> <jwt>
--   spend <token>                   (one single-use pass token per redemption)
--   path <path>                     (scenario "paths": GET each in turn, e.g. signed /i/ image URLs)
-- done() prints one line "WRKJSON {...}" with the counts, errors and latency percentiles (ms).

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

local function fields(line)
   local out = {}
   for word in line:gmatch("%S+") do out[#out + 1] = word end
   return out
end

function init(args)
   scenario, run_id = args[1], args[2]
   settings, devices, cards, spend, paths = {}, {}, {}, {}, {}
   for line in io.lines(args[3]) do
      local f = fields(line)
      if f[1] == "set" then settings[f[2]] = f[3]
      elseif f[1] == "device" then devices[#devices + 1] = { key = f[2], cashier = f[3] }
      elseif f[1] == "card" then cards[#cards + 1] = { id = f[2], number = f[3], token = f[4], jwt = f[5] }
      elseif f[1] == "spend" then spend[#spend + 1] = f[2]
      elseif f[1] == "path" then paths[#paths + 1] = f[2]
      end
   end
   nthreads = tonumber(settings.threads or "1")
   serial, spent, sales, queue, failures = 0, 0, 0, {}, {}
   path_turn = tid * 7  -- each thread starts elsewhere in the paths
   math.randomseed(tid * 7919 + os.time())
end

local function device_headers(device)
   return { ["Authorization"] = "Device " .. device.key, ["Content-Type"] = "application/json" }
end

local function unique()
   serial = serial + 1
   return string.format("%s-%d-%d", run_id, tid, serial)
end

local function scan(card, device)
   return wrk.format("POST", "/api/pos/v1/scan/", device_headers(device), '{"code":"' .. card.token .. '"}')
end

local function purchase(card, device)
   local sale = unique()
   local headers = device_headers(device)
   headers["Idempotency-Key"] = sale
   local body = string.format('{"code":"%s","external_id":"%s","amount":%s,"currency":"%s"}',
                              card.number, sale, settings.amount, settings.currency)
   return wrk.format("POST", "/api/pos/v1/purchases/", headers, body)
end

local function redeem(device)
   -- Thread t spends tokens t, t + n, t + 2n, ...: no token is sent twice in a run.
   local index = tid + spent * nthreads
   spent = spent + 1
   local token = spend[((index - 1) % #spend) + 1]
   local headers = device_headers(device)
   headers["Idempotency-Key"] = unique()
   headers["Tessera-Cashier"] = device.cashier
   headers["Tessera-Cashier-Pin"] = settings.pin
   return wrk.format("POST", "/api/pos/v1/redemptions/", headers,
                     string.format('{"code":"%s","reward_id":%s}', token, settings.reward))
end

local function customer_get(path, card)
   return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. card.jwt })
end

local function any_card() return cards[math.random(#cards)] end
local function any_device() return devices[math.random(#devices)] end

-- The counter mix, per ten sales: 7 scan + purchase, 2 scan only, 1 scan + redeem.
local function next_mix()
   if #queue == 0 then
      sales = sales + 1
      local card, device, sale = any_card(), any_device(), sales % 10
      queue[#queue + 1] = scan(card, device)
      if sale < 7 then queue[#queue + 1] = purchase(card, device)
      elseif sale == 9 then queue[#queue + 1] = redeem(device)
      end
   end
   return table.remove(queue, 1)
end

local wallet_turn = 0

-- The hardening issue's mix, per ten requests: 4 scans, 4 purchases, 1 redemption, 1 wallet read.
local HARDENING = { "scan", "purchase", "scan", "purchase", "scan", "purchase", "scan", "purchase", "redeem", "wallet" }
local hardening_turn = 0

local function wallet_read()
   wallet_turn = wallet_turn + 1
   local card = any_card()
   if wallet_turn % 2 == 0 then return customer_get("/api/v1/cards/", card) end
   return customer_get("/api/v1/cards/" .. card.id .. "/history/", card)
end

local function next_hardening()
   hardening_turn = hardening_turn % #HARDENING + 1
   local kind = HARDENING[hardening_turn]
   if kind == "scan" then return scan(any_card(), any_device())
   elseif kind == "purchase" then return purchase(any_card(), any_device())
   elseif kind == "redeem" then return redeem(any_device())
   end
   return wallet_read()
end

function request()
   if scenario == "scan" then return scan(any_card(), any_device())
   elseif scenario == "purchase" then return purchase(any_card(), any_device())
   elseif scenario == "redeem" then return redeem(any_device())
   elseif scenario == "mix" then return next_mix()
   elseif scenario == "hardening" then return next_hardening()
   elseif scenario == "paths" then
      path_turn = path_turn + 1
      return wrk.format("GET", paths[(path_turn % #paths) + 1])
   elseif scenario == "wallet" then return wallet_read()
   elseif scenario == "qr_png" then
      local card = any_card()
      return customer_get("/api/v1/cards/" .. card.id .. "/qr.png", card)
   elseif scenario == "qr_svg" then
      local card = any_card()
      return customer_get("/api/v1/cards/" .. card.id .. "/qr.svg", card)
   elseif scenario == "barcode_png" then
      local card = any_card()
      return customer_get("/api/v1/cards/" .. card.id .. "/barcode.png", card)
   end
   error("unknown scenario " .. tostring(scenario))
end

function response(status, headers, body)
   if status >= 400 and #failures < 3 then
      failures[#failures + 1] = status .. " " .. string.sub(body or "", 1, 200):gsub("[\r\n\"\\]", " ")
   end
end

function done(summary, latency, requests)
   local samples = {}
   for _, thread in ipairs(threads) do
      local mine = thread:get("failures")
      if mine then for _, text in ipairs(mine) do samples[#samples + 1] = '"' .. text .. '"' end end
   end
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_s":%.3f,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
      '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_ms":%.2f,"p90_ms":%.2f,"p99_ms":%.2f,' ..
      '"max_ms":%.2f,"mean_ms":%.2f,"error_samples":[%s]}\n',
      summary.requests, summary.duration / 1e6, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency.max / 1000, latency.mean / 1000, table.concat(samples, ",")))
end
