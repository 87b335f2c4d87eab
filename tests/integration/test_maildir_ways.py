"""
test_maildir_ways: each of the Maildir backend's three ways of writing a
file delivers every message once into new/, whole, and leaves nothing in
tmp/.

tests/tools/nounnamed.c is preloaded into b. First it only watches: b
writes each file without a name (O_TMPFILE in tmp/) and links it into new/
once its bytes are on disk, and the shim logs both. Then it shows b a
filesystem without unnamed files (b writes tmp/NAME and renames it into
new/), then a kernel that will not link an open file through AT_EMPTY_PATH
(b links through /proc/self/fd). The shim logs each refusal, so the test
knows the other way was really taken; without the fallback those deliveries
would fail and stay pending. Skipped (77) where the test's folder has no
unnamed files at all.
"""
import errno
import os
import sys

from harness import HEX64, make_msg, preload_env, run, start_pair, wait_until

LIST = "incidents"


def nounnamed_env(mode, log):
    return preload_env(os.environ["IL_NOUNNAMED"], IL_NOUNNAMED=mode, IL_NOUNNAMED_LOG=log)


def main(t, fed):
    a = fed.relay("a")
    b = fed.relay("b", listen=False)
    log = os.path.join(fed.tmp, "nounnamed.log")
    b.extra_env = nounnamed_env("watch", log)
    start_pair(a, b)
    md = b.maildir(LIST)

    def shim_log():
        try:
            with open(log) as f:
                return f.read().split("\n")[:-1]
        except FileNotFoundError:
            return []

    def post_three(way):
        ids = []
        for i in range(3):
            body = "%s message %d\n" % (way, i)
            rc, out = a.submit(LIST, make_msg("%s-%d@example.org" % (way, i), subject=way,
                                              body=body))
            if rc != 0 or not HEX64.match(out):
                raise AssertionError("submit %s %d: exit %d, %r" % (way, i, rc, out))
            ids.append(out)
        wait_until(lambda: all(m in b.delivered_ids(LIST) for m in ids), 20,
                   "b delivers the %s posts" % way)
        wait_until(lambda: b.list_status(LIST)["pending"] == 0, 20, "b records them")
        got = b.delivered_ids(LIST)
        t.ok(all(got.count(m) == 1 for m in ids), "%s: each delivered once" % way)
        by_id = {d.hdr.get("X-Interlist-Id"): d for d in b.delivered(LIST)}
        t.ok(all(("%s message %d\n" % (way, i)).encode() in by_id[m].orig
                 for i, m in enumerate(ids)), "%s: each file whole" % way)
        t.eq(os.listdir(os.path.join(md, "tmp")), [], "%s: nothing left in tmp/" % way)
        t.eq(b.log_events("deferred", list=LIST), [], "%s: no attempt deferred" % way)

    post_three("unnamed")
    t.ok(shim_log().count("unnamed open") >= 3 and shim_log().count("linked") >= 3
         and not [x for x in shim_log() if x.startswith("refused")],
         "by default: unnamed files, linked by descriptor, nothing refused")

    for mode, way in (("open", "named"), ("link", "proc-link")):
        b.stop()
        b.extra_env = nounnamed_env(mode, log)
        b.start()
        b.wait_ready()
        wait_until(lambda: a.peer("b")["connected"] and b.peer("a")["connected"], 20,
                   "a-b session up again")
        before = len(shim_log())
        post_three(way)
        t.ok(len(shim_log()) > before and all(x == "refused " + mode for x in shim_log()[before:]),
             "%s: the shim refused %s, so the other way was taken" % (way, mode))
        if mode == "open":
            t.ok(b.log_events("maildir_unnamed_off", reason="no_tmpfile"),
                 "named: b logs that it writes named files from now on")
    t.eq(len(b.maildir_files(LIST)), 9, "nine files in all")


def unnamed_files_here():
    """Can the folder the tests run in hold a file without a name?"""
    try:
        fd = os.open("/tmp", os.O_TMPFILE | os.O_WRONLY, 0o600)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR):
            return False
        raise
    os.close(fd)
    return True


if __name__ == "__main__":
    if not unnamed_files_here():
        print("1..0 # SKIP no O_TMPFILE on /tmp")
        sys.exit(77)
    run(main)
