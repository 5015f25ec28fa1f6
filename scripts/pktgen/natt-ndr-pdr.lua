-- SPDX-License-Identifier: BSD-3-Clause
-- natt-ndr-pdr.lua - NDR and PDR of a gateway for one natt-traffic scenario, on pktgen-dpdk.
--
-- Not run by any test (pktgen-dpdk is not a Debian package): the profile for carrier
-- labs. scripts/natt-traffic writes one small profile per capture (pktgen/<dir>_<S>.lua)
-- that defines the global table `natt` and dofile()s this file; see README.md,
-- "Benchmarking with pktgen-dpdk".
--
-- What it does, the way FD.io CSIT reports throughput:
--   1. step: one trial at 10, 20, ..., 100 % of line rate; prints the loss of each;
--   2. search: bisection between the highest step without loss and the step above it,
--      down to natt.precision_pct of line rate, for
--        NDR (no-drop rate): loss = 0 packets;
--        PDR (partial-drop rate): loss ratio <= natt.pdr_loss (0.5 %);
--   3. final: one natt.final_ms trial at each result; if it fails, the rate is lowered
--      by the precision and tried again (at most 5 times).
-- A trial: clear the counters, send the pcap in a loop at the rate for natt.trial_ms,
-- stop, wait 1 s for the gateway to drain, then loss = port tx_port opackets - port
-- rx_port ipackets. The capture loops, so the gateway must run with replay_window = 0.
-- Results: printed, and one CSV line per result in natt.result
-- (name,kind,rate_pct,mpps_offered,mpps_forwarded,gbps_l2_offered,loss_ratio).

package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local c = natt
local function printf(...) io.write(string.format(...)) end
local tx, rx = tostring(c.tx_port), tostring(c.rx_port)

local function trial(pct, ms)
	pktgen.stop(tx)
	pktgen.clr()
	pktgen.set(tx, "rate", pct)
	pktgen.start(tx)
	pktgen.delay(ms)
	pktgen.stop(tx)
	pktgen.delay(1000)
	local sent = pktgen.portStats(tx, "port")[c.tx_port].opackets
	local got = pktgen.portStats(rx, "port")[c.rx_port].ipackets
	local loss = sent > 0 and (sent - got) / sent or 1
	local r = { pct = pct, sent = sent, got = got, loss = loss,
		    mpps = sent / ms / 1000, fwd = got / ms / 1000 }
	printf("%s: %6.2f %% of line rate, %d ms: sent %d, received %d, loss %.5f %%\n",
	       c.name, pct, ms, sent, got, 100 * loss)
	return r
end

local function passes(r, max_loss)
	if max_loss == 0 then return r.sent - r.got <= 0 end
	return r.loss <= max_loss
end

-- highest rate in [lo, hi] (lo passes, hi fails) that passes, to the precision
local function bisect(lo, hi, max_loss)
	while hi - lo > c.precision_pct do
		local mid = (lo + hi) / 2
		if passes(trial(mid, c.trial_ms), max_loss) then lo = mid else hi = mid end
	end
	return lo
end

local function search(steps, max_loss)
	local lo, hi = 0, nil
	for _, r in ipairs(steps) do
		if passes(r, max_loss) then lo = r.pct else hi = r.pct; break end
	end
	if hi == nil then return 100 end
	return bisect(lo, hi, max_loss)
end

local function confirm(kind, pct, max_loss, out)
	for _ = 1, 5 do
		if pct <= 0 then break end
		local r = trial(pct, c.final_ms)
		if passes(r, max_loss) then
			local gbps = r.mpps * c.avg_frame_bytes * 8 / 1000
			printf("%s %s: %.2f %% of line rate = %.3f Mpps offered, %.3f Mpps forwarded, "
			       .. "%.2f Gbps (L2), loss %.5f %%\n", c.name, kind, pct, r.mpps, r.fwd,
			       gbps, 100 * r.loss)
			out:write(string.format("%s,%s,%.2f,%.4f,%.4f,%.3f,%.6f\n", c.name, kind, pct,
						r.mpps, r.fwd, gbps, r.loss))
			return
		end
		pct = pct - c.precision_pct
	end
	printf("%s %s: not confirmed in %d ms trials\n", c.name, kind, c.final_ms)
	out:write(string.format("%s,%s,unconfirmed,,,,\n", c.name, kind))
end

local function main()
	pktgen.screen("off")
	pktgen.pcap(tx, "on")
	pktgen.set(tx, "count", 0)
	local steps = {}
	for pct = 10, 100, 10 do steps[#steps + 1] = trial(pct, c.trial_ms) end
	local out = io.open(c.result, "w")
	out:write("name,kind,rate_pct,mpps_offered,mpps_forwarded,gbps_l2_offered,loss_ratio\n")
	confirm("NDR", search(steps, 0), 0, out)
	confirm("PDR", search(steps, c.pdr_loss), c.pdr_loss, out)
	out:close()
	printf("%s: results in %s\n", c.name, c.result)
end

main()
