"""
test_mixed_versions: a federation in the middle of an upgrade.

a writes version 1 envelopes (`envelope_version = 1`, what an operator sets
while some peers still run 0.1), c the default version 2, and b, between
them, forwards both. Each post reaches the other two relays exactly once,
and every relay stores each envelope in the version its origin wrote: the
version byte is signed, so no relay on the way can change it.
"""
import os
import sqlite3

from harness import make_msg, run, wait_until

LIST = "incidents"


def stored_versions(r):
    """Message-ID -> envelope version byte, from r's store (read only)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(r.data, "interlist.db"), uri=True)
    try:
        rows = db.execute("SELECT msgid, substr(blob, 1, 1) FROM messages").fetchall()
    finally:
        db.close()
    return {mid.strip("<>"): v[0] for mid, v in rows if mid}


def main(t, fed):
    a = fed.relay("a", relay_conf={"envelope_version": 1})
    b = fed.relay("b")
    c = fed.relay("c", listen=False)
    fed.wire_line(a, b, c)
    fed.start_all(a, b, c)
    wait_until(lambda: b.peer("a")["connected"] and c.peer("b")["connected"], 20,
               "a-b and b-c sessions up")

    posts = {a: "from-a-v1@example.org", c: "from-c-v2@example.org"}
    for r, mid in posts.items():
        rc, _ = r.submit(LIST, make_msg(mid))
        t.eq(rc, 0, "a post at %s" % r.id)
    want = {a: [posts[c]], b: sorted(posts.values()), c: [posts[a]]}
    for r, ids in want.items():
        wait_until(lambda: len(r.maildir_files(LIST)) >= len(ids), 20,
                   "%s to deliver %d" % (r.id, len(ids)))
    wait_until(lambda: all(r.settled() for r in want), 20, "queues and deliveries drained")
    for r, ids in want.items():
        got = sorted(d.message_id for d in r.delivered(LIST))
        t.eq(got, sorted(ids), "%s delivered each post once" % r.id)

    for r in (a, b, c):
        v = stored_versions(r)
        t.eq(v.get(posts[a]), 1, "%s stores a's post as version 1" % r.id)
        t.eq(v.get(posts[c]), 2, "%s stores c's post as version 2" % r.id)
    for r in (a, b, c):
        st = r.status()["counters"]
        t.eq((st["bad_signature"], st["malformed"]), (0, 0),
             "%s refused nothing" % r.id)
        r.stop()


if __name__ == "__main__":
    run(main)
