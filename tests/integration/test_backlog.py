"""
test_backlog: a — b (a listens, b dials a; a's messages reach b through b's
pull long-poll). With b stopped, 50 posts at a queue for b; when b comes
back, all 50 arrive exactly once and a's queue drains.
"""
import os

from harness import HEX64, make_msg, run, start_pair, wait_until

LIST = "incidents"
N = 50


def main(t, fed):
    a = fed.relay("a")
    b = fed.relay("b", listen=False)
    start_pair(a, b)
    t.ok(True, "a-b session up")

    b.stop()
    t.ok(True, "b stops on SIGTERM with exit 0")
    wait_until(lambda: not a.peer("b")["connected"], 20, "a to see b disconnected")
    t.ok(True, "a shows b connected=false")

    ids = {}
    bad = []
    for i in range(N):
        msg = make_msg("backlog-%03d@example.org" % i, subject="backlog %d" % i, body="n=%d\n" % i)
        rc, out = a.submit(LIST, msg)
        if rc != 0 or not HEX64.match(out):
            bad.append((i, rc, out))
        ids[out] = (i, msg)
    t.eq(bad, [], "all %d submits at a exit 0 with an id" % N)
    t.eq(len(ids), N, "%d distinct ids" % N)
    wait_until(lambda: a.peer("b")["queued"] == N, 10, "a's queue for b to reach %d" % N)
    t.ok(True, "a's status shows %d queued for b" % N)
    t.eq(b.maildir_files(LIST), [], "nothing at b while it is down")

    b.restart()
    wait_until(lambda: len(b.maildir_files(LIST)) >= N, 30, "%d files at b" % N)
    wait_until(lambda: a.peer("b")["queued"] == 0, 20, "a's queue for b to drain")
    t.ok(True, "a's queue for b goes to 0")
    wait_until(b.settled, 20, "b's deliveries done")

    files = b.delivered(LIST)
    got = sorted(f.hdr.get("X-Interlist-Id") for f in files)
    t.eq(got, sorted(ids), "b holds each of the %d posts exactly once" % N)
    t.eq(len({f.message_id for f in files}), len(files), "no Message-ID twice at b")
    t.ok(all(f.orig == ids[f.hdr["X-Interlist-Id"]][1] for f in files if f.hdr.get("X-Interlist-Id") in ids),
         "every file carries its original bytes")
    t.eq(os.listdir(os.path.join(b.maildir(LIST), "tmp")), [], "b's Maildir tmp/ empty")
    sb = b.status()
    ls = b.list_status(LIST, sb)
    t.eq((ls["delivered"], ls["pending"], ls["failed"]), (N, 0, 0), "b list delivered/pending/failed")
    t.eq(sb["counters"]["accepted"], N, "b accepted %d" % N)
    t.eq(a.peer("b")["sent"], N, "a counts %d sent to b" % N)
    a.stop()
    b.stop()
    t.ok(True, "both stop on SIGTERM with exit 0")


if __name__ == "__main__":
    run(main)
