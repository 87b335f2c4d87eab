"""
test_recordfail: a delivery whose outcome the store cannot record (its disk
is full) is not made again, and is recorded once space returns.

b delivers its list to a program (`exec:`) and keeps its data on a small
tmpfs (mounted by the test: it needs root, as CI has; otherwise the test is
skipped with exit 77). The program, on its first run, fills that tmpfs and
exits 0: the message is handed over, and b's store cannot record it. The
relay must hold that outcome, not fetch the still-due row and run the
program again (it used to, at once and over and over, each run another copy
on the list). Once the filler is removed, the held record goes in, the
delivery counts, and the program has run exactly once for that message.

A full disk alone did not always stop the record: once a checkpoint has
copied the WAL back, SQLite writes the next transaction over the WAL's
first frames, in space the file already has. So the program waits, after
the message is stored and before it fills the disk, until the test holds a
read transaction open on b's database: a reader keeps the WAL from being
started over, and the record must grow the file.
"""
import os
import sqlite3
import stat

from harness import make_msg, run, wait_until

LIST = "incidents"


def runs(path):
    try:
        with open(path) as f:
            return [l.strip() for l in f if l.strip()]
    except FileNotFoundError:
        return []


def main(t, fed):
    with fed.small_disk("b-disk", "4m") as small:
        check(t, fed, small)


def check(t, fed, small):
    count = os.path.join(fed.tmp, "runs.txt")
    flag = os.path.join(fed.tmp, "filled")
    filler = os.path.join(small, "filler")
    prog = os.path.join(fed.tmp, "take.sh")
    started = os.path.join(fed.tmp, "started")
    go = os.path.join(fed.tmp, "go")
    with open(prog, "w") as f:
        f.write("#!/bin/sh\n"
                "id=$(grep -m1 -i '^Message-ID:' | tr -d '\\r')\n"
                "echo \"$id\" >> %s\n"
                "if [ ! -e %s ]; then touch %s %s\n"
                "  i=0; while [ ! -e %s ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n"
                "  dd if=/dev/zero of=%s bs=64k 2>/dev/null\n"
                "fi\n"
                "exit 0\n" % (count, flag, flag, started, go, filler))
    os.chmod(prog, stat.S_IRWXU)

    a = fed.relay("a")
    b = fed.relay("b", listen=False, list_conf={LIST: {"deliver": "exec:" + prog}})
    b.data = os.path.join(small, "data")
    a.add_peer(b)
    b.add_peer(a, dial=True)
    fed.start_all(a, b)
    wait_until(lambda: a.peer("b")["connected"], 20, "b connected to a")

    rc, _ = a.submit(LIST, make_msg("held-1@example.org"))
    t.eq(rc, 0, "a post at a")
    wait_until(lambda: os.path.exists(started), 30, "the program to start")
    # mode=rw: never create an empty database where b's should be.
    reader = sqlite3.connect("file:%s?mode=rw" % os.path.join(b.data, "interlist.db"),
                             uri=True, isolation_level=None)
    # Empty the WAL first: a reader that starts on a WAL that is all
    # checkpointed does not keep the writer from starting it over, while
    # an empty file leaves it nothing to write over.
    wait_until(lambda: reader.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0, 10,
               "b's WAL truncated")
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM sqlite_master").fetchall()
    open(go, "w").close()
    wait_until(lambda: b.log_events("delivery_record_failed", list=LIST), 30,
               "b's store to refuse the delivery record (disk full)")
    t.ok(os.path.exists(filler), "the program filled b's disk")
    t.eq(len(runs(count)), 1, "with the outcome unrecorded, the program is not run again")

    reader.execute("COMMIT")
    reader.close()
    os.remove(filler)
    wait_until(lambda: b.list_status(LIST)["delivered"] == 1, 30, "the held record to go in")
    t.ok(b.log_events("delivery_records_resumed", list=LIST), "b logs that recording resumed")
    wait_until(lambda: b.settled(), 30, "nothing pending at b")
    t.eq(runs(count), ["Message-ID: <held-1@example.org>"],
         "the program ran exactly once for the message")

    rc, _ = a.submit(LIST, make_msg("held-2@example.org"))
    t.eq(rc, 0, "a second post at a")
    wait_until(lambda: b.list_status(LIST)["delivered"] == 2, 30, "the second delivery")
    t.eq(len(runs(count)), 2, "and the next message is delivered once, as usual")
    b.stop()
    a.stop()


if __name__ == "__main__":
    run(main)
