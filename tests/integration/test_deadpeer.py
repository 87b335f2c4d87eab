"""
test_deadpeer: relay a dials two peers: b (running, listening) and d, whose
url points at a closed port on 127.0.0.1. The dead peer must not hold up the
live one: a starts, b connects, a post at a reaches b, and d stays
connected=false with the post queued for it.
"""
from harness import HEX64, free_port, make_msg, run, wait_until

LIST = "incidents"


def main(t, fed):
    a = fed.relay("a", listen=False)
    b = fed.relay("b")
    d = fed.relay("d", listen=False)        # keys only; never started
    dead_port = free_port()                 # nothing listens there
    a.add_peer(d, url="tls+tcp://127.0.0.1:%d" % dead_port)
    a.add_peer(b, dial=True)
    b.add_peer(a)
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
    a.stop()
    b.stop()
    t.ok(True, "both stop on SIGTERM with exit 0 (a while still dialing d)")


if __name__ == "__main__":
    run(main)
