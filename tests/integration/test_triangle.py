"""
test_triangle: a, b and c all peered with each other, every relay listening
and dialing both others (so each pair also exercises the "lower id's
session carries both directions" yield).

A post at each relay reaches the other two exactly once; the flood reaches
someone twice, so the relays together count duplicates.
"""
import os

from harness import HEX64, make_msg, run, wait_until

LIST = "incidents"


def main(t, fed):
    relays = [fed.relay(i) for i in ("a", "b", "c")]
    for r in relays:
        for o in relays:
            if o is not r:
                r.add_peer(o, dial=True)
    for r in relays:
        r.start()
    for r in relays:
        r.wait_ready()

    def meshed():
        return all(p["connected"] for r in relays for p in r.status()["peers"])
    wait_until(meshed, 20, "every relay connected to both others")
    t.ok(True, "all three pairs connected on both sides")

    posts = {}
    for r in relays:
        msg = make_msg("tri-%s@example.org" % r.id, subject="triangle %s" % r.id,
                       body="Posted at %s.\n" % r.id)
        rc, out = r.submit(LIST, msg)
        t.ok(rc == 0 and HEX64.match(out), "submit at %s: exit 0 and an id" % r.id, (rc, out))
        posts[r.id] = (out, msg)

    for r in relays:
        want = {posts[o.id][0] for o in relays if o is not r}
        wait_until(lambda: want <= set(r.delivered_ids(LIST)), 20, "the other posts at %s" % r.id)
    wait_until(lambda: all(r.settled() for r in relays), 20, "queues and deliveries drained")

    for r in relays:
        files = r.delivered(LIST)
        ids = sorted(f.hdr.get("X-Interlist-Id") for f in files)
        t.eq(ids, sorted(posts[o.id][0] for o in relays if o is not r),
             "%s holds the other two posts exactly once, not its own" % r.id)
        msgids = sorted(f.message_id for f in files)
        t.eq(msgids, sorted("tri-%s@example.org" % o.id for o in relays if o is not r),
             "%s: one file per Message-ID" % r.id)
        for f in files:
            origin = f.hdr.get("X-Interlist-Origin")
            path = f.hdr.get("X-Interlist-Path", "").split("!")
            t.ok(origin in posts and f.orig == posts[origin][1] and path[0] == origin
                 and path[-1] == r.id and len(path) in (2, 3) and len(set(path)) == len(path),
                 "%s: %s's post intact, path %s starts at origin and ends here"
                 % (r.id, origin, f.hdr.get("X-Interlist-Path")), f.raw[:300])
        t.eq(os.listdir(os.path.join(r.maildir(LIST), "tmp")), [], "%s: Maildir tmp/ empty" % r.id)

    sts = {r.id: r.status() for r in relays}
    dups = sum(s["counters"]["duplicates"] for s in sts.values())
    t.ok(dups > 0, "the relays together counted duplicates (%d): the flood reached someone twice"
         % dups)
    for rid, s in sts.items():
        t.eq(s["counters"]["accepted"], 3, "%s accepted 3" % rid)
        ls = [l for l in s["lists"] if l["name"] == LIST][0]
        t.eq((ls["ingested"], ls["delivered"], ls["pending"], ls["failed"]), (1, 2, 0, 0),
             "%s list ingested/delivered/pending/failed" % rid)
        bad = {k: v for k, v in s["counters"].items()
               if k not in ("accepted", "duplicates") and v}
        t.eq(bad, {}, "%s: no refusal counters" % rid)

    for r in relays:
        r.stop()
    t.ok(True, "all three stop on SIGTERM with exit 0")


if __name__ == "__main__":
    run(main)
