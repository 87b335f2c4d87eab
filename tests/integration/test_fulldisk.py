"""
test_fulldisk: a relay whose disk fills up stays up, answers "try later"
to its peers and to local posts, logs it, and resumes when space returns,
with nothing lost and nothing delivered twice.

b's data folder and Maildir live on a small tmpfs (mounted by the test: it
needs root, as CI has; otherwise the test is skipped with exit 77). a feeds
b until b's store is full, then the tmpfs is grown and everything queued at
a must arrive at b exactly once.
"""
import os
import subprocess

from harness import make_msg, run, wait_until

LIST = "incidents"


def main(t, fed):
    a = fed.relay("a")
    b = fed.relay("b", listen=False)
    with fed.small_disk("b-disk", "3m") as small:
        b.data = os.path.join(small, "data")
        b.maildir = lambda lst: os.path.join(small, "maildir", lst)
        a.add_peer(b)
        b.add_peer(a, dial=True)
        fed.start_all(a, b)
        wait_until(lambda: a.peer("b")["connected"], 20, "b connected to a")

        body = "x" * 60000 + "\n"
        posted = []
        # About 40 messages of 60 KB (stored, and written to the Maildir)
        # do not fit in 3 MB.
        bad = []
        for i in range(60):
            rc, out = a.submit(LIST, make_msg("full-%d@example.org" % i, body=body))
            if rc != 0:
                bad.append((i, rc))
            posted.append("full-%d@example.org" % i)
        t.eq(bad, [], "60 posts of 60 KB accepted at a")
        wait_until(lambda: a.peer("b")["queued"] > 0 and b.log_events("put_failed")
                   or b.log_events("deferred"), 30, "b to run out of space")
        t.ok(b.running(), "b is still running with a full disk")
        rc, out = b.submit(LIST, make_msg("local-while-full@example.org", body=body))
        t.eq(rc, 75, "a local post at b while its disk is full: exit 75 (try later)")
        t.ok(a.peer("b")["queued"] > 0, "a keeps what b could not take (%d queued)"
             % a.peer("b")["queued"])
        t.ok(b.log_events("put_failed") or b.log_events("deferred"), "b logs the full disk")

        subprocess.run(["mount", "-o", "remount,size=64m", small], check=True)
        wait_until(lambda: len(b.maildir_files(LIST)) >= len(posted), 60,
                   "every message at b once space is back")
        wait_until(lambda: a.settled() and b.settled(), 30, "queues and deliveries drained")
        got = sorted(d.message_id for d in b.delivered(LIST))
        t.eq(got, sorted(posted), "b has every message exactly once")
        rc, out = b.submit(LIST, make_msg("local-after@example.org"))
        t.eq(rc, 0, "local posts at b work again")
        b.stop()
        a.stop()


if __name__ == "__main__":
    run(main)
