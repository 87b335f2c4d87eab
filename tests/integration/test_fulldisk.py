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


def fill_up(path):
    """Write PATH until the file system has no block left."""
    chunk = b"\0" * 4096
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0")
        except OSError:
            pass


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
        # A failed batch leaves its WAL frames in the file, so a smaller
        # transaction may still fit: that is room, and b rightly takes it.
        # Fill whatever the file system has left, then post until b has no
        # room at all; each post it accepts must reach a's list.
        filler = os.path.join(small, "filler")
        fill_up(filler)
        rcs, local = [], []
        for i in range(8):
            mid = "local-while-full-%d@example.org" % i
            rc, out = b.submit(LIST, make_msg(mid, body=body))
            rcs.append(rc)
            if rc == 0:
                local.append(mid)
            if rc != 0:
                break
        t.eq(rcs[-1], 75, "a local post at b while its disk is full: exit 75 (try later)"
             " (after %d accepted into leftover room)" % (len(rcs) - 1))
        t.ok(a.peer("b")["queued"] > 0, "a keeps what b could not take (%d queued)"
             % a.peer("b")["queued"])
        t.ok(b.log_events("put_failed") or b.log_events("deferred"), "b logs the full disk")

        os.unlink(filler)
        subprocess.run(["mount", "-o", "remount,size=64m", small], check=True)
        wait_until(lambda: len(b.maildir_files(LIST)) >= len(posted), 60,
                   "every message at b once space is back")
        wait_until(lambda: a.settled() and b.settled(), 30, "queues and deliveries drained")
        got = sorted(d.message_id for d in b.delivered(LIST))
        t.eq(got, sorted(posted), "b has every message exactly once")
        wait_until(lambda: len(a.maildir_files(LIST)) >= len(local), 30,
                   "b's accepted local posts at a")
        got = sorted(d.message_id for d in a.delivered(LIST))
        t.eq(got, sorted(local), "a has each local post b accepted, once")
        rc, out = b.submit(LIST, make_msg("local-after@example.org"))
        t.eq(rc, 0, "local posts at b work again")
        b.stop()
        a.stop()


if __name__ == "__main__":
    run(main)
