"""
test_kill9: a — b (b listens, a dials b: a's messages go out as PUSH
requests). A background thread posts a stream of messages at a.

1. b is kill -9'd mid-stream (after it delivered some) and restarted: every
   message a acknowledged (submit exit 0) arrives at b exactly once.
2. a itself is kill -9'd mid-stream and restarted. Like an MTA, the thread
   retries a post that failed with exit 75 until a is back: every id that
   submit printed before the kill, and every one printed after, reaches b
   exactly once.
"""
import os
import threading
import time

from harness import HEX64, Failure, make_msg, run, wait_until

LIST = "incidents"
N = 300


class Stream(threading.Thread):
    """Submit N messages at relay, one after the other, pacing them a little
    so that the kills land mid-stream. A post refused with 75 (daemon down)
    is tried again until retry_for seconds have passed."""

    def __init__(self, relay, prefix, n, pace=0.01, retry_for=30):
        super().__init__(daemon=True)
        self.relay, self.prefix, self.n, self.pace, self.retry_for = relay, prefix, n, pace, retry_for
        self.lock = threading.Lock()
        self.acked = {}          # index -> id printed
        self.msgs = {}           # index -> bytes
        self.tempfails = 0
        self.errors = []         # (index, rc, out) other than 0/75

    def acked_ids(self):
        with self.lock:
            return dict(self.acked)

    def run(self):
        for i in range(self.n):
            msg = make_msg("%s-%04d@example.org" % (self.prefix, i), subject="%s %d" % (self.prefix, i),
                           body="stream %s message %d\n" % (self.prefix, i))
            self.msgs[i] = msg
            deadline = time.monotonic() + self.retry_for
            while True:
                try:
                    rc, out = self.relay.submit(LIST, msg, timeout=20)
                except Exception as e:      # timeout: treat like a temporary failure
                    rc, out = 75, repr(e)
                if rc == 0 and HEX64.match(out):
                    with self.lock:
                        self.acked[i] = out
                    break
                if rc == 75 and time.monotonic() < deadline:
                    with self.lock:
                        self.tempfails += 1
                    time.sleep(0.02)
                    continue
                with self.lock:
                    self.errors.append((i, rc, out))
                break
            time.sleep(self.pace)


def check_exactly_once(t, b, expect, label):
    """expect: {id: message bytes}. b's Maildir holds exactly these, once each."""
    files = b.delivered(LIST)
    ids = [f.hdr.get("X-Interlist-Id") for f in files]
    missing = sorted(set(expect) - set(ids))
    extra = sorted(set(ids) - set(expect))
    t.ok(not missing, "%s: every acknowledged message is at b (%d)" % (label, len(expect)),
         "missing %d: %s" % (len(missing), missing[:5]))
    t.ok(not extra, "%s: nothing at b that was not acknowledged" % label, extra[:5])
    t.eq(len(ids), len(set(ids)), "%s: no envelope id twice at b" % label)
    msgids = [f.message_id for f in files]
    t.eq(len(msgids), len(set(msgids)), "%s: no Message-ID twice at b (%d files)" % (label, len(files)))
    wrong = [f.path for f in files if f.hdr.get("X-Interlist-Id") in expect
             and f.orig != expect[f.hdr["X-Interlist-Id"]]]
    t.eq(wrong, [], "%s: every file carries its original bytes" % label)
    t.eq(os.listdir(os.path.join(b.maildir(LIST), "tmp")), [], "%s: b's Maildir tmp/ empty" % label)


def drain(a, b, want_ids, what):
    wait_until(lambda: set(want_ids) <= set(b.delivered_ids(LIST)), 45, what)
    wait_until(lambda: a.peer("b")["queued"] == 0 and b.settled(), 20, "a's queue and b's deliveries drained")


def main(t, fed):
    a = fed.relay("a", listen=False)
    b = fed.relay("b")
    a.add_peer(b, dial=True)
    b.add_peer(a)
    b.start()
    b.wait_ready()
    a.start()
    a.wait_ready()
    wait_until(lambda: a.peer("b")["connected"] and b.peer("a")["connected"], 20, "a-b session up")
    t.ok(True, "a-b session up")

    # ---- 1. kill -9 the receiver mid-stream ----
    s1 = Stream(a, "k9b", N)
    s1.start()
    wait_until(lambda: len(b.maildir_files(LIST)) >= 30, 30, "b to deliver some of the stream")
    acked_at_kill = len(s1.acked_ids())
    t.ok(acked_at_kill < N, "b killed mid-stream (%d of %d acknowledged so far)" % (acked_at_kill, N))
    t.eq(b.kill9(), -9, "b killed with SIGKILL")
    b.restart()
    t.ok(True, "b restarted")
    s1.join(90)
    if s1.is_alive():
        raise Failure("the submit stream did not finish")
    t.eq(s1.errors, [], "stream 1: no submit failed for good")
    acked1 = s1.acked_ids()
    t.eq(len(acked1), N, "stream 1: a acknowledged all %d posts" % N)
    expect = {acked1[i]: s1.msgs[i] for i in acked1}
    t.eq(len(expect), len(acked1), "stream 1: %d distinct ids" % len(acked1))
    drain(a, b, expect, "stream 1 at b")
    check_exactly_once(t, b, expect, "b killed")
    t.note("stream 1: b counted %d duplicates" % b.counters()["duplicates"])

    # ---- 2. kill -9 the sender mid-stream ----
    s2 = Stream(a, "k9a", N)
    s2.start()
    wait_until(lambda: len(s2.acked_ids()) >= 60, 30, "a to acknowledge part of stream 2")
    t.eq(a.kill9(), -9, "a killed with SIGKILL")
    before = s2.acked_ids()          # a is dead: no id can be printed now
    t.ok(len(before) < N, "a killed mid-stream (%d of %d acknowledged)" % (len(before), N))
    wait_until(lambda: s2.tempfails > 0, 10, "a submit to fail while a is down")
    t.ok(True, "submits fail (exit 75) while a is down")
    a.restart()
    t.ok(True, "a restarted")
    s2.join(90)
    if s2.is_alive():
        raise Failure("the submit stream did not finish")
    t.eq(s2.errors, [], "stream 2: no submit failed for good")
    acked2 = s2.acked_ids()
    t.eq(len(acked2), N, "stream 2: a acknowledged all %d posts (retrying after 75)" % N)
    t.eq({i: acked2.get(i) for i in before}, before,
         "stream 2: ids printed before the kill are unchanged")
    for i in acked2:
        expect[acked2[i]] = s2.msgs[i]
    t.eq(len(expect), 2 * N, "%d distinct ids over both streams" % (2 * N))
    drain(a, b, expect, "stream 2 at b")
    check_exactly_once(t, b, expect, "a killed")
    t.ok(set(before.values()) <= set(b.delivered_ids(LIST)),
         "every id printed before a's kill (%d) reached b" % len(before))
    ls = b.list_status(LIST)
    t.eq((ls["pending"], ls["failed"]), (0, 0), "b: nothing pending or failed")
    a.stop()
    b.stop()
    t.ok(True, "both stop on SIGTERM with exit 0")


if __name__ == "__main__":
    run(main)
