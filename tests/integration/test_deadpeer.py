"""
test_deadpeer: relay a dials two peers: b (running, listening) and d, not
started, so nothing listens at its url on 127.0.0.1. The dead peer must not
hold up the live one: a starts, b connects, a post at a reaches b, and d
stays connected=false with the post queued for it. Then d comes up after
being down for 8 s: a dials it again within its reconnect ceiling (2 to 3 s,
docs/protocol.md; with the earlier 20 to 30 s, nng 1.5.2's doubling waits
left such a peer unvisited for 10 s and more), and the post reaches d.
"""
import time

from harness import HEX64, make_msg, run, wait_until

LIST = "incidents"


def main(t, fed):
    a = fed.relay("a", listen=False)
    b = fed.relay("b")
    d = fed.relay("d")                      # started only at the end
    a.add_peer(d, dial=True)
    a.add_peer(b, dial=True)
    b.add_peer(a)
    d.add_peer(a)
    t0 = time.monotonic()
    b.start()
    b.wait_ready()
    a.start()
    st = a.wait_ready()
    t.eq(sorted(p["id"] for p in st["peers"]), ["b", "d"], "a starts with peers b and d")

    wait_until(lambda: a.peer("b")["connected"] and b.peer("a")["connected"], 20, "a-b session up")
    t.ok(True, "b connects although d is dead")

    msg = make_msg("dead-1@example.org", body="to b, and to d if it ever comes\n")
    rc, out = a.submit(LIST, msg)
    t.ok(rc == 0 and HEX64.match(out), "submit at a: exit 0 and an id", (rc, out))
    wait_until(lambda: out in b.delivered_ids(LIST), 20, "the post at b")
    files = b.delivered(LIST)
    t.eq([(f.hdr.get("X-Interlist-Id"), f.hdr.get("X-Interlist-Path"), f.orig) for f in files],
         [(out, "a!b", msg)], "the post reaches b once, intact, path a!b")
    wait_until(lambda: a.peer("b")["queued"] == 0, 10, "a's queue for b drained")

    dp = a.peer("d")
    t.ok(dp["connected"] is False and dp["connects"] == 0 and dp["last_seen"] is None
         and dp["sent"] == 0, "d: connected=false, connects=0, last_seen=null, sent=0", dp)
    t.eq(dp["queued"], 1, "the post waits in d's queue")
    t.eq(a.peer("b")["sent"], 1, "a sent 1 to b")
    t.ok(a.running() and b.running(), "both daemons still running")

    # ---- d comes up after 8 s down ----
    time.sleep(max(0.0, 8.0 - (time.monotonic() - t0)))     # the outage, not a wait for state
    t.eq(a.peer("d")["connected"], False, "d still down after 8 s")
    d.start()
    d.wait_ready()
    wait_until(lambda: a.peer("d")["connected"], 6, "a dialling d again within its 2-3 s ceiling")
    t.ok(True, "a-d session up within 6 s of d listening")
    wait_until(lambda: out in d.delivered_ids(LIST), 20, "the queued post at d")
    t.eq(a.peer("d")["queued"], 0, "a's queue for d drained")
    d.stop()
    a.stop()
    b.stop()
    t.ok(True, "all stop on SIGTERM with exit 0")


if __name__ == "__main__":
    run(main)
