"""
test_syncfail: when the fdatasync that acknowledgements wait for fails (an
I/O error), the relay acknowledges nothing more and exits 74.

A real interlistd runs with tests/tools/failsync.c preloaded: while a flag
file exists, fsync/fdatasync of its WAL fail with EIO. A post before the
flag is acknowledged (exit 0); the post that meets the failed sync is not
(exit 75, the MTA keeps it), the relay logs sync_failed and exits 74, and a
restart (disk healthy again) still has the first post and takes new ones.
Then the same for a relay receiving from a peer: the message whose sync
failed is not delivered to its list, and arrives once after the restart.
"""
import os

from harness import make_msg, preload_env, run, wait_until

LIST = "incidents"


def failsync_env(flag):
    """interlistd's environment to fail its WAL syncs while flag exists."""
    return preload_env(os.environ["IL_FAILSYNC"], IL_FAILSYNC_FLAG=flag)


def main(t, fed):
    a = fed.relay("a")
    b = fed.relay("b", listen=False)    # a peer that never comes: a queues for it
    a.add_peer(b)
    flag = os.path.join(fed.tmp, "fail-now")
    a.extra_env = failsync_env(flag)
    fed.start_all(a)

    rc, out = a.submit(LIST, make_msg("before@example.org"))
    t.eq(rc, 0, "a post while the disk works: acknowledged")
    t.eq(a.peer("b")["queued"], 1, "it is queued for b")

    open(flag, "w").close()
    rc, out = a.submit(LIST, make_msg("during@example.org"))
    t.eq(rc, 75, "the post that meets the failed sync: not acknowledged (75, try later)")
    wait_until(lambda: not a.running(), 20, "a to exit after the failed sync")
    t.eq(a.proc.returncode, 74, "a exits 74 (EX_IOERR)")
    t.ok(a.log_events("sync_failed", action="stop"), "a logs sync_failed action=stop")
    rc, out = a.submit(LIST, make_msg("after@example.org"))
    t.eq(rc, 75, "with a down, posts are refused for now (75)")

    os.remove(flag)
    a.start()
    st = a.wait_ready()
    t.ok(a.peer("b", st)["queued"] >= 1, "after the restart the acknowledged post is still queued")
    rc, out = a.submit(LIST, make_msg("again@example.org"))
    t.eq(rc, 0, "after the restart posts are acknowledged again")
    a.stop()
    check_receiver(t, fed)


def check_receiver(t, fed):
    """A message from a peer whose sync fails is neither acknowledged nor
    delivered to the list (the durable watermark): after the restart it is
    sent again and delivered once."""
    c = fed.relay("c")
    d = fed.relay("d", listen=False)
    c.add_peer(d)
    d.add_peer(c, dial=True)
    flag = os.path.join(fed.tmp, "fail-d")
    d.extra_env = failsync_env(flag)
    fed.start_all(c, d)
    wait_until(lambda: c.peer("d")["connected"], 20, "d connected to c")
    rc, _ = c.submit(LIST, make_msg("ok-1@example.org"))
    t.eq(rc, 0, "a post at c")
    wait_until(lambda: len(d.maildir_files(LIST)) == 1, 20, "d delivers it while its disk works")

    open(flag, "w").close()
    rc, _ = c.submit(LIST, make_msg("lost-sync@example.org"))
    t.eq(rc, 0, "a second post at c")
    wait_until(lambda: not d.running(), 20, "d to exit when its sync fails")
    t.eq(d.proc.returncode, 74, "d exits 74")
    t.eq(sorted(x.message_id for x in d.delivered(LIST)), ["ok-1@example.org"],
         "the message whose sync failed was not delivered to d's list")
    t.eq(c.peer("d")["queued"], 1, "c still holds it: d never acknowledged it")

    os.remove(flag)
    d.start()
    d.wait_ready()
    wait_until(lambda: c.peer("d")["queued"] == 0 and len(d.maildir_files(LIST)) == 2, 30,
               "c to send it again and d to deliver it")
    t.eq(sorted(x.message_id for x in d.delivered(LIST)), ["lost-sync@example.org", "ok-1@example.org"],
         "after the restart d has both, each once")
    d.stop()
    c.stop()


if __name__ == "__main__":
    run(main)
