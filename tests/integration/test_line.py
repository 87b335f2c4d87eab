"""
test_line: three relays in a line, a — b — c.

a listens; b dials a and listens; c dials b only (c is dial-only: no listen).
A post at each relay reaches every other relay's Maildir exactly once, never
its own, with the relay headers in front of the original bytes; counters and
peer states add up; a repeated Message-ID is a repeat, not a new message.
"""
import os
import re

from harness import HEX64, make_msg, run, wait_until

LIST = "incidents"


def main(t, fed):
    a = fed.relay("a")
    b = fed.relay("b")
    c = fed.relay("c", listen=False)
    # a and c know each other's signing keys without talking directly.
    fed.wire_line(a, b, c)
    relays = [a, b, c]
    for r in relays:
        r.start()
        r.wait_ready()

    def linked():
        pairs = [(a, "b"), (b, "a"), (b, "c"), (c, "b")]
        return all(r.peer(p)["connected"] for r, p in pairs)
    wait_until(linked, 20, "a-b and b-c sessions up on both sides")
    t.ok(True, "sessions a-b and b-c up on both sides")

    # One post at each relay.
    posts = {}
    for r in relays:
        msg = make_msg("line-%s@example.org" % r.id, subject="from %s" % r.id,
                       body="Body of the post at %s.\nSecond line.\n" % r.id)
        rc, out = r.submit(LIST, msg)
        t.eq(rc, 0, "submit at %s exits 0" % r.id)
        t.ok(HEX64.match(out), "submit at %s prints a 64 lower-hex id" % r.id, out)
        posts[r.id] = (out, msg)

    # Each relay gets the two posts from the others.
    for r in relays:
        want = {posts[o.id][0] for o in relays if o is not r}
        wait_until(lambda: want <= set(r.delivered_ids(LIST)), 20,
                   "posts of the other relays in %s's Maildir" % r.id)
    wait_until(lambda: all(r.settled() for r in relays), 20, "queues and deliveries drained")

    paths = {("a", "b"): "a!b", ("a", "c"): "a!b!c", ("b", "a"): "b!a", ("b", "c"): "b!c",
             ("c", "b"): "c!b", ("c", "a"): "c!b!a"}
    for r in relays:
        files = r.delivered(LIST)
        ids = [f.hdr.get("X-Interlist-Id") for f in files]
        want = sorted(posts[o.id][0] for o in relays if o is not r)
        t.eq(sorted(ids), want, "%s holds exactly the other two posts, once each" % r.id)
        t.ok(posts[r.id][0] not in ids, "%s's own post is not delivered back to it" % r.id)
        for f in files:
            origin = f.hdr.get("X-Interlist-Origin")
            if origin not in posts:
                t.ok(False, "%s: delivered file with unknown origin" % r.id, f.raw[:300])
                continue
            pid, msg = posts[origin]
            when = f.hdr.get("X-Interlist-Time", "")
            t.ok(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", when),
                 "%s: X-Interlist-Time of %s's post in RFC 3339 with ms" % (r.id, origin), when)
            want_hdrs = [("X-Interlist-Id", pid), ("X-Interlist-Time", when), ("X-Interlist-Origin", origin),
                         ("X-Interlist-Path", paths[(origin, r.id)]), ("X-Interlist-TLP", "AMBER"),
                         ("X-Interlist-List", LIST)]
            t.eq(f.relay_headers, want_hdrs, "%s: relay headers of %s's post" % (r.id, origin))
            t.ok(f.orig == msg, "%s: %s's post follows, byte for byte" % (r.id, origin),
                 "got %r" % f.orig[:300])
        t.eq(os.listdir(os.path.join(r.maildir(LIST), "tmp")), [],
             "%s: nothing left in the Maildir's tmp/" % r.id)

    # Counters and peer states.
    for r in relays:
        st = r.status()
        t.eq(st["counters"]["accepted"], 3, "%s accepted 3 (its post and two from its peer)" % r.id)
        t.eq(st["counters"]["duplicates"], 0, "%s saw no duplicates in a line" % r.id)
        ls = r.list_status(LIST, st)
        t.eq((ls["ingested"], ls["delivered"], ls["pending"], ls["failed"]), (1, 2, 0, 0),
             "%s list ingested/delivered/pending/failed" % r.id)
        for p in st["peers"]:
            t.ok(p["connected"] is True and p["connects"] >= 1 and p["queued"] == 0
                 and isinstance(p["last_seen"], int),
                 "%s: peer %s connected, connects >= 1, nothing queued, last_seen set" % (r.id, p["id"]), p)
    # What crossed each link: a-b carries a's post one way and b's and c's the other.
    sent = {(r.id, p["id"]): (p["sent"], p["received"]) for r in relays for p in r.status()["peers"]}
    t.eq(sent, {("a", "b"): (1, 2), ("b", "a"): (2, 1), ("b", "c"): (2, 1), ("c", "b"): (1, 2)},
         "sent/received per link")

    # The same Message-ID again: same id, exit 0, nothing new anywhere.
    rc, out = a.submit(LIST, posts["a"][1])
    t.eq((rc, out), (0, posts["a"][0]), "submitting a's post again prints the same id, exit 0")
    before = {r.id: r.maildir_files(LIST) for r in relays}
    wait_until(lambda: all(r.settled() for r in relays), 10, "queues and deliveries drained")
    # Nothing was queued by the repeat (settled at once); the files stay as they were.
    t.eq({r.id: r.maildir_files(LIST) for r in relays}, before, "the repeat delivers nothing new")
    t.eq(a.counters()["duplicates"], 1, "a counts the repeat as a duplicate")
    t.eq(a.counters()["accepted"], 3, "a's accepted is unchanged by the repeat")

    for r in relays:
        r.stop()
        t.ok(True, "%s stops on SIGTERM with exit 0" % r.id)


if __name__ == "__main__":
    run(main)
