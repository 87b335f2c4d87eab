"""
test_maildir_once: a Maildir delivery that may already have happened is not
made twice, even when the list's reader has moved the file to cur/.

A file is checked for only when it may be there: the delivery was tried
before (in this run or an earlier one). a posts to b; b's Maildir has its
new/ replaced by a plain file, so the rename fails and the delivery is
deferred. Then new/ comes back and a copy of the message is put in cur/
under its name with reader flags, as if the failed attempt had in fact
landed and a reader had seen it. When b tries again (after its backoff, and
after a restart for the second post) it must find that copy and record the
delivery done without a second file. A fresh post after that is delivered
as usual.
"""
import os
import shutil

from harness import HEX64, make_msg, run, start_pair, wait_until

LIST = "incidents"


def main(t, fed):
    a = fed.relay("a")
    b = fed.relay("b", listen=False)
    start_pair(a, b)
    md = b.maildir(LIST)
    new = os.path.join(md, "new")

    def post(tag):
        rc, out = a.submit(LIST, make_msg("%s@example.org" % tag, subject=tag))
        if rc != 0 or not HEX64.match(out):
            raise AssertionError("submit %s: exit %d, %r" % (tag, rc, out))
        return out

    def break_new():
        shutil.rmtree(new)
        with open(new, "w") as f:
            f.write("not a folder\n")

    def mend_new_with_copy_in_cur(mid):
        os.unlink(new)
        os.mkdir(new, 0o700)
        with open(os.path.join(md, "cur", "%s.interlist:2,S" % mid), "w") as f:
            f.write("X-Interlist-Id: %s\n\nthe copy a reader has seen\n" % mid)

    def copies(mid):
        return b.delivered_ids(LIST).count(mid)

    # ---- retried in the same run ----
    break_new()
    m1 = post("once-retry")
    wait_until(lambda: b.log_events("deferred", list=LIST, msg=m1), 20, "b defers m1 (no new/)")
    t.ok(True, "a failed rename defers the delivery")
    mend_new_with_copy_in_cur(m1)
    wait_until(lambda: b.list_status(LIST)["pending"] == 0, 30, "b's retry of m1 recorded")
    t.eq(copies(m1), 1, "retry: the copy in cur/ is found, no second file")
    t.eq(os.listdir(new), [], "retry: nothing written to new/")

    # ---- tried before a restart ----
    break_new()
    m2 = post("once-restart")
    wait_until(lambda: b.log_events("deferred", list=LIST, msg=m2), 20, "b defers m2 (no new/)")
    b.stop()
    mend_new_with_copy_in_cur(m2)
    b.start()
    b.wait_ready()
    wait_until(lambda: b.list_status(LIST)["pending"] == 0, 30, "b's retry of m2 after restart")
    t.eq(copies(m2), 1, "restart: the copy in cur/ is found, no second file")
    t.eq(os.listdir(new), [], "restart: nothing written to new/")

    # ---- a fresh post goes to new/ as usual ----
    m3 = post("once-fresh")
    wait_until(lambda: m3 in b.delivered_ids(LIST), 20, "m3 delivered")
    t.eq(copies(m3), 1, "a fresh post is delivered once")
    t.eq(os.listdir(new), ["%s.interlist" % m3], "... into new/")


if __name__ == "__main__":
    run(main)
