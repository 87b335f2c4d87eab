"""
test_reload: SIGHUP and `interlistctl reload` while traffic flows.

- Hub h (listens) with a and b dialling it; a steady stream of posts at a.
  During the stream: peer c is added to h (`interlistctl reload`, exit 0) and
  connects while a and b keep their sessions (connects stays 1 on both
  sides); then SIGHUP gives h a url for b, so both dial: h's dialer gives
  way to b's session (the lower id's), a and c are untouched. Every post reaches h and b exactly once, and
  c gets everything posted after its reload, never twice. Then c is stopped,
  posts queue for it at h, and removing it logs event=removed with
  dropped_queue equal to the queued count status showed.
- A broken config (a garbage line, and dropping peer a) is refused by
  `reload` (exit 78, "FILE:LINE:") and by SIGHUP (event=reload_refused): the
  old config stays (a still a peer, sessions untouched, posts flow). A reload
  that changes [relay] listen is refused with 78 and names the line.
- Narrowing b's max_tlp to green on reload drops the AMBER post queued for it
  (event=queue_filtered); b then gets only the GREEN one.
- Dial yield: x and y both dial, y yields; a reload of y that removes its url
  for x keeps the session; x leaving and coming back crashes nothing and the
  session comes back (a reproducer once crashed y in nng_dialer_create with
  a NULL url).
- A 30 KB x 2000 backlog drained by d while d's reload redials s repeatedly
  (tls_cert toggled between two copies of the same file; `reload` and
  SIGHUP): reload and status answer within 2 s each time and every message
  arrives exactly once.
- SIGTERM while d drains a big backlog exits 0 within 10 s, several times;
  every message still arrives exactly once.
- Ten reloads in a row that redial while d2's first dial to s2 is still
  being negotiated: the session must still come up and carry a post.

Backlogs are posted straight on the status socket (the request
`interlistctl submit` sends) to keep the run short; the stream of the first
part uses `interlistctl submit` itself.
"""
import collections
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from harness import Failure, free_port, make_msg, run, wait_until

LIST = "incidents"
BIG_BODY = ("y" * 100 + "\n") * 300          # ~30 KB
BACKLOG = 2000


def ids_at(r, prefix):
    """Counter of the Message-IDs starting with prefix in r's Maildir."""
    return collections.Counter(d.message_id for d in r.delivered(LIST)
                               if d.message_id and d.message_id.startswith(prefix))


def dups(counter):
    return {k: v for k, v in counter.items() if v != 1}


def eq(t, got, want, what, detail):
    """t.eq with a note on failure."""
    return t.ok(got == want, what, None if got == want else "got:  %r\nwant: %r\n%s" % (got, want, detail))


def reloaded_count(r):
    return len(r.log_events("reloaded"))


def post_raw(r, data, timeout=30):
    """One `submit` request on r's status socket, as interlistctl sends it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(r.sock)
        s.sendall(b"submit %s %d\n" % (LIST.encode(), len(data)) + data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return out.decode()


def post_backlog(t, r, prefix, n, body=BIG_BODY):
    bad = []
    for i in range(n):
        ans = post_raw(r, make_msg("%s-%05d@example.org" % (prefix, i), body=body))
        if not ans.startswith("ok "):
            bad.append((i, ans))
    t.eq(bad[:5], [], "%d posts of %d bytes taken at %s" % (n, len(body), r.id))
    return {"%s-%05d@example.org" % (prefix, i) for i in range(n)}


class Stream(threading.Thread):
    """Posts at relay with `interlistctl submit` until stopped (and at least
    min_count posted). posted: [(Message-ID, monotonic start, rc)]."""

    def __init__(self, relay, prefix, min_count, max_count=2000):
        super().__init__(daemon=True)
        self.relay, self.prefix = relay, prefix
        self.min_count, self.max_count = min_count, max_count
        self.halt = threading.Event()
        self.posted = []
        self.errors = []

    def run(self):
        i = 0
        try:
            while i < self.max_count and not (self.halt.is_set() and i >= self.min_count):
                mid = "%s-%04d@example.org" % (self.prefix, i)
                t0 = time.monotonic()
                rc, out = self.relay.submit(LIST, make_msg(mid, body="n=%d\n" % i))
                if rc != 0:
                    self.errors.append((mid, rc, out, self.relay.last_submit_stderr))
                self.posted.append((mid, t0, rc))
                i += 1
        except Exception as e:      # noqa: BLE001 - reported by the main thread
            self.errors.append(("exception", repr(e)))

    def count(self):
        return len(self.posted)


# ---------------------------------------------------------------- 1 + 2 + 3

def hub(t, fed):
    h = fed.relay("h")
    a = fed.relay("a", listen=False)
    b = fed.relay("b")                  # listens: h dials it after the SIGHUP
    c = fed.relay("c", listen=False)
    for x in (a, b):
        x.add_peer(h, dial=True)
        h.add_peer(x)
    c.add_peer(h, dial=True)
    b.add_origin(a)
    c.add_origin(a)
    for r in (h, a, b):
        r.start()
    for r in (h, a, b):
        r.wait_ready()
    wait_until(lambda: all(p["connected"] for p in h.status()["peers"]), 20, "a and b connected to h")

    def connects(r, pid):
        return r.peer(pid)["connects"]

    stream = Stream(a, "st", 200)
    stream.start()
    try:
        wait_until(lambda: stream.count() >= 20 or stream.errors, 20, "the stream to start")

        # ---- add c by `interlistctl reload`
        h.add_peer(c)
        h.write_config()
        rc, out, err = h.ctl("reload")
        t_c = time.monotonic()
        t.eq((rc, out.strip()), (0, "ok reloaded"), "reload adding peer c: exit 0")
        t.ok(h.log_events("added", peer="c"), "h logs event=added peer=c")
        c.start()
        c.wait_ready()
        wait_until(lambda: h.peer("c")["connected"] and c.peer("h")["connected"], 20, "c connected to h")
        t.ok(True, "c connects to h after the reload")
        n_at_c = stream.count()
        wait_until(lambda: stream.count() >= n_at_c + 20 or stream.errors, 20, "posts after c joined")
        t.eq({p: (connects(h, p), h.peer(p)["connected"]) for p in ("a", "b")},
             {"a": (1, True), "b": (1, True)}, "h: a and b still on their first session after adding c")
        t.eq((connects(a, "h"), connects(b, "h")), (1, 1), "a and b: still their first session with h")

        # ---- SIGHUP: h gets a url for b too, so both dial. The pair settles on
        # one session: b's id sorts lower, so b's carries both directions and
        # h's dialer gives way once its HELLO is answered.
        h.peers = [(p, dict(o, url=b.url) if p is b else o) for p, o in h.peers]
        h.write_config()
        before = reloaded_count(h)
        os.kill(h.pid, signal.SIGHUP)
        wait_until(lambda: reloaded_count(h) > before, 10, "h to apply the SIGHUP")
        wait_until(lambda: h.log_events("dial_yield", peer="b"), 20, "h to give way to b's session")
        t.ok(h.log_events("dialing", peer="b"), "after SIGHUP h dials b")
        t.eq(connects(h, "b"), 1, "h's own dialer session never came up: it gave way")
        t.eq(b.log_events("session_down", peer="h", role="dialer"), [],
             "b's session (its dialer's) carries on throughout")
        t.ok(h.peer("b")["connected"] and b.peer("h")["connected"], "h and b still connected")
        n_at_b = stream.count()
        wait_until(lambda: stream.count() >= n_at_b + 20 or stream.errors, 20, "posts after b's change")
    finally:
        stream.halt.set()
        stream.join(120)
    t.ok(not stream.is_alive(), "the stream ended")
    t.eq(stream.errors, [], "every post of the stream taken (exit 0)")
    t.eq({p: connects(h, p) for p in ("a", "c")}, {"a": 1, "c": 1},
         "h: a and c untouched by b's change (connects 1)")
    t.eq(connects(a, "h"), 1, "a: still its first session with h")
    t.eq(h.log_events("session_down", peer="a"), [], "h never logged session_down for a")
    t.ok(all(h.peer(p)["connected"] for p in ("a", "b", "c")), "a, b and c connected to h")

    posted = [m for m, _, rc in stream.posted if rc == 0]
    after_c = {m for m, t0, rc in stream.posted if rc == 0 and t0 > t_c}
    t.note("stream: %d posts, %d after c was added" % (len(posted), len(after_c)))
    want = collections.Counter(posted)
    wait_until(lambda: set(ids_at(b, "st-")) >= set(posted) and set(ids_at(h, "st-")) >= set(posted)
               and set(ids_at(c, "st-")) >= after_c, 30, "the stream at h, b and c", interval=0.2)
    wait_until(lambda: all(r.settled() for r in (a, h, b, c)), 20, "queues and deliveries drained")
    t.eq(ids_at(a, "st-"), collections.Counter(), "a delivers none of its own posts (its list has them)")
    for r in (h, b):
        got = ids_at(r, "st-")
        t.eq((len(got), dups(got), set(want) - set(got)), (len(want), {}, set()),
             "%s: every post of the stream exactly once" % r.id)
    gc = ids_at(c, "st-")
    t.ok(after_c <= set(gc), "c has everything posted after its reload (%d of %d)" % (len(after_c), len(gc)),
         sorted(after_c - set(gc))[:10])
    t.eq(dups(gc), {}, "c: no post twice")
    t.eq(set(gc) - set(want), set(), "c: nothing that was not posted")

    # ---- remove c: its queue is dropped and counted
    c.stop()
    wait_until(lambda: not h.peer("c")["connected"], 20, "h to see c gone")
    for i in range(5):
        rc, out = a.submit(LIST, make_msg("rm-%d@example.org" % i))
        t.ok(rc == 0, "post rm-%d at a while c is down" % i)
    wait_until(lambda: len(ids_at(b, "rm-")) == 5 and h.peer("c")["queued"] == 5, 20,
               "5 posts queued for c at h")
    queued = h.peer("c")["queued"]
    h.peers = [(p, o) for p, o in h.peers if p is not c]
    h.write_config()
    rc, out, err = h.ctl("reload")
    t.eq(rc, 0, "reload removing c: exit 0")
    lines = h.log_events("removed", peer="c")
    t.ok(len(lines) == 1, "h logs event=removed peer=c once", h.log_tail(10))
    t.ok(lines and ("dropped_queue=%d" % queued) in lines[0].split(),
         "removed names dropped_queue=%d, the count status showed" % queued, lines)
    t.eq(sorted(p["id"] for p in h.status()["peers"]), ["a", "b"], "c is gone from h's status")
    t.eq(connects(h, "a"), 1, "a untouched by c's removal")

    broken_config(t, h, a, b)
    narrow_tlp(t, h, a, b)


def broken_config(t, h, a, b):
    good = h.config_text()
    snap = {p["id"]: (p["connected"], p["connects"]) for p in h.status()["peers"]}
    # Drop peer a and add a garbage line: none of it may apply.
    lines = good.splitlines()
    start = lines.index("[peer a]")
    end = start + 1
    while end < len(lines) and not lines[end].startswith("["):
        end += 1
    lines = lines[:start] + lines[end:]
    lines.append("this line is not a setting")
    bad_line = len(lines)
    with open(h.conf_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    refused = len(h.log_events("reload_refused"))
    rc, out, err = h.ctl("reload")
    eq(t, rc, 78, "reload of a broken config exits 78", (out, err))
    where = "%s:%d:" % (h.conf_path, bad_line)
    t.ok(where in err, "the error names %s" % where, err)
    t.eq(len(h.log_events("reload_refused")), refused + 1, "h logs event=reload_refused")
    os.kill(h.pid, signal.SIGHUP)
    wait_until(lambda: len(h.log_events("reload_refused")) >= refused + 2, 10, "SIGHUP refused too")
    t.ok(h.running(), "h still running after two refused reloads")
    st = h.status()
    t.eq({p["id"]: (p["connected"], p["connects"]) for p in st["peers"]}, snap,
         "old config in force: same peers (a included), same sessions")
    rc, mid = a.submit(LIST, make_msg("after-refused@example.org"))
    wait_until(lambda: ids_at(b, "after-refused@") and ids_at(h, "after-refused@"), 20,
               "a post after the refused reload at h and b")
    t.ok(rc == 0, "posts still flow a -> h -> b after the refused reloads")

    # listen cannot change on reload
    port = free_port()
    old = "listen = tls+tcp://127.0.0.1:%d" % h.port
    new_lines = good.splitlines()
    listen_line = new_lines.index(old) + 1
    with open(h.conf_path, "w") as f:
        f.write(good.replace(old, "listen = tls+tcp://127.0.0.1:%d" % port))
    rc, out, err = h.ctl("reload")
    eq(t, rc, 78, "reload changing [relay] listen exits 78", (out, err))
    t.ok("%s:%d: listen" % (h.conf_path, listen_line) in err and "restart" in err,
         "the error names the listen line and asks for a restart", err)
    t.eq({p["id"]: (p["connected"], p["connects"]) for p in h.status()["peers"]}, snap,
         "sessions untouched by the refused listen change")
    h.write_config()
    rc, out, err = h.ctl("reload")
    t.eq(rc, 0, "the good config reloads again")
    t.eq({p["id"]: (p["connected"], p["connects"]) for p in h.status()["peers"]}, snap,
         "a reload of an unchanged config touches no session")


def narrow_tlp(t, h, a, b):
    b.stop()
    wait_until(lambda: not h.peer("b")["connected"], 20, "h to see b gone")
    rc1, amber = a.submit(LIST, make_msg("tlp-amber@example.org", extra_headers="TLP: AMBER\n"))
    rc2, green = a.submit(LIST, make_msg("tlp-green@example.org", extra_headers="TLP: GREEN\n"))
    t.ok(rc1 == 0 and rc2 == 0, "AMBER and GREEN posted at a while b is down")
    wait_until(lambda: h.peer("b")["queued"] == 2, 20, "both queued for b at h")
    held = h.counters()["held_tlp"]
    h.peers = [(p, dict(o, max_tlp="green") if p is b else o) for p, o in h.peers]
    h.write_config()
    rc, out, err = h.ctl("reload")
    t.eq(rc, 0, "reload narrowing b's max_tlp to green: exit 0")
    t.ok(h.log_events("queue_filtered", peer="b", dropped=1), "h logs event=queue_filtered peer=b dropped=1",
         h.log_tail(5))
    t.eq(h.peer("b")["queued"], 1, "one message left queued for b")
    t.eq(h.counters()["held_tlp"], held + 1, "the dropped one counts in held_tlp")
    b.restart()
    wait_until(lambda: ids_at(b, "tlp-green@"), 20, "GREEN at b")
    wait_until(lambda: h.peer("b")["queued"] == 0, 20, "h's queue for b empty")
    t.eq(sorted(ids_at(b, "tlp-")), ["tlp-green@example.org"], "b got the GREEN post only")
    t.eq(sorted(ids_at(h, "tlp-")), ["tlp-amber@example.org", "tlp-green@example.org"],
         "h itself delivered both")


# ---------------------------------------------------------------- 4

def yield_reload(t, fed):
    x, y = fed.relay("x"), fed.relay("y")
    x.add_peer(y, dial=True)
    y.add_peer(x, dial=True)
    for r in (x, y):
        r.start()
    for r in (x, y):
        r.wait_ready()
    wait_until(lambda: y.log_events("dial_yield", peer="x") and x.peer("y")["connected"]
               and y.peer("x")["connected"], 20, "y (the higher id) to yield")
    t.eq(x.log_events("dial_yield"), [], "only y yields")
    y.peers = [(x, {})]
    y.write_config()
    rc, out, err = y.ctl("reload")
    eq(t, rc, 0, "reload of the yielded y without a url for x: exit 0", err)
    wait_until(lambda: y.peer("x")["connected"], 10, "the session with x still up")
    t.ok(True, "y's session with x survives the reload")
    rc1, _ = x.submit(LIST, make_msg("y1-from-x@example.org"))
    rc2, _ = y.submit(LIST, make_msg("y1-from-y@example.org"))
    wait_until(lambda: ids_at(y, "y1-from-x") and ids_at(x, "y1-from-y"), 20, "posts both ways")
    t.ok(rc1 == 0 and rc2 == 0, "posts flow both ways after the reload")

    # x leaves: y must not try to dial it back (it has no url now)
    x.stop()
    wait_until(lambda: not y.peer("x")["connected"], 20, "y to see x gone")
    deadline = time.monotonic() + 1.5       # bounded negative check
    while time.monotonic() < deadline:
        if not y.running():
            break
        y.status()
        time.sleep(0.1)
    t.ok(y.running(), "y still running after x left (exit %r)" % (y.proc.poll(),))
    x.restart()
    wait_until(lambda: y.peer("x")["connected"] and x.peer("y")["connected"], 20, "x back")
    t.ok(True, "the session comes back when x returns")
    rc1, _ = x.submit(LIST, make_msg("y2-from-x@example.org"))
    rc2, _ = y.submit(LIST, make_msg("y2-from-y@example.org"))
    wait_until(lambda: ids_at(y, "y2-from-x") and ids_at(x, "y2-from-y"), 20, "posts both ways again")
    t.ok(rc1 == 0 and rc2 == 0 and y.running(), "posts flow both ways again, y running")


# ---------------------------------------------------------------- 5 + 6

def timed_status(r, limit=2.0):
    t0 = time.monotonic()
    try:
        r.command("status", timeout=limit)
    except (OSError, socket.timeout):
        return None
    return time.monotonic() - t0


def backlog(t, fed):
    s = fed.relay("s")
    d = fed.relay("d", listen=False)
    s.add_peer(d)
    d.add_peer(s, dial=True)
    s.start()
    s.wait_ready()
    want = post_backlog(t, s, "bl", BACKLOG)
    wait_until(lambda: s.peer("d")["queued"] == BACKLOG, 20, "backlog queued for d")
    copy = os.path.join(fed.tmp, "s-copy.tls.crt")
    shutil.copy(s.tls_cert, copy)
    d.start()
    d.wait_ready()
    # The first reload comes once the drain has begun (a reload while the
    # first dial is still in flight is dial_race's business).
    wait_until(lambda: d.counters()["accepted"] > 0, 20, "d to start draining")

    # ---- 5: reloads that redial while the backlog drains
    slow, failures, k = [], [], 0
    while k < 12:
        acc = d.counters()["accepted"]
        if acc >= BACKLOG:
            break
        k += 1
        txt = d.config_text()
        if k % 2:
            txt = txt.replace("tls_cert = %s\n" % s.tls_cert, "tls_cert = %s\n" % copy)
        with open(d.conf_path, "w") as f:
            f.write(txt)
        t0 = time.monotonic()
        if k % 3 == 0:
            # SIGHUP: applied once the log says reloaded
            n0 = reloaded_count(d)
            os.kill(d.pid, signal.SIGHUP)
            try:
                wait_until(lambda: reloaded_count(d) > n0, 10, "SIGHUP %d applied" % k)
            except Failure:
                failures.append("SIGHUP %d: not applied in 10 s" % k)
                break
        else:
            try:
                rc, out, err = d.ctl("reload", timeout=10)
            except subprocess.TimeoutExpired:
                failures.append("reload %d: no answer in 10 s" % k)
                break
            if rc != 0:
                failures.append("reload %d: exit %d %s" % (k, rc, err.strip()))
        took = time.monotonic() - t0
        st = timed_status(d)
        slow.append((acc, round(took, 2), st and round(st, 3)))
        if st is None or took > 2:
            failures.append("reload %d: reload %.2f s, status %r" % (k, took, st))
            break
        # Next reload once this session has brought something in.
        wait_until(lambda: d.counters()["accepted"] > acc or d.counters()["accepted"] >= BACKLOG, 20,
                   "progress after reload %d" % k)
    mid = k
    t.eq(failures, [], "every reload during the drain answered and status answered within 2 s")
    t.ok(mid >= 3, "%d reloads happened mid-drain" % mid)
    t.note("reloads during the drain (accepted before, reload s, status s): %s" % slow)
    t.ok(len(d.log_events("dialing", peer="s")) >= mid + 1, "each reload redialled s",
         len(d.log_events("dialing", peer="s")))
    wait_until(lambda: s.peer("d")["queued"] == 0 and d.settled(), 60, "backlog drained")
    got = ids_at(d, "bl-")
    t.eq((len(got), dups(got), len(want - set(got))), (len(want), {}, 0),
         "all %d backlog posts at d exactly once" % BACKLOG)

    # ---- 6: SIGTERM while a big backlog drains
    d.stop(timeout=10)
    want2 = post_backlog(t, s, "tm", BACKLOG)
    times, bad, mid_drain = [], [], 0
    for k in range(5):
        d.start()
        d.wait_ready()
        q0 = s.peer("d")["queued"]
        if q0 == 0:
            break
        if k % 2 == 0:
            # as soon as the session is up: the first pull's reply is arriving
            wait_until(lambda: d.peer("s")["connected"], 20, "d connected (run %d)" % k)
        else:
            wait_until(lambda: d.counters()["accepted"] > 0, 20, "d accepting (run %d)" % k)
        if s.peer("d")["queued"] > 0:
            mid_drain += 1
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        try:
            rc = d.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
            d.proc.kill()
            d.proc.wait()
        times.append(round(time.monotonic() - t0, 2))
        d.exits.append(rc)
        if rc != 0:
            bad.append((k, rc, times[-1]))
    t.note("SIGTERM exit times during the drain: %s (%d mid-drain)" % (times, mid_drain))
    t.eq(bad, [], "every SIGTERM during the drain: exit 0 within 10 s")
    t.ok(mid_drain >= 2, "%d SIGTERMs came while messages were still queued for d" % mid_drain)
    if not d.running():
        d.restart()
    wait_until(lambda: s.peer("d")["queued"] == 0 and d.settled(), 60, "second backlog drained")
    got = ids_at(d, "tm-")
    t.eq((len(got), dups(got), len(want2 - set(got))), (len(want2), {}, 0),
         "all %d posts of the second backlog at d exactly once" % BACKLOG)
    d.stop(timeout=10)
    t.ok(True, "d stops with exit 0")


def dial_race(t, fed):
    """Reloads that redial while d's first dial is still being negotiated."""
    s = fed.relay("s2")
    d = fed.relay("d2", listen=False)
    s.add_peer(d)
    d.add_peer(s, dial=True)
    s.start()
    s.wait_ready()
    copy = os.path.join(fed.tmp, "s2-copy.tls.crt")
    shutil.copy(s.tls_cert, copy)
    base = d.config_text()
    alt = base.replace("tls_cert = %s\n" % s.tls_cert, "tls_cert = %s\n" % copy)
    up, rounds = True, 0
    for rounds in range(1, 6):
        # Each round: a fresh start of d2, then ten reloads in a row.
        with open(d.conf_path, "w") as f:
            f.write(base)
        d.start()
        d.wait_ready()
        rcs = []
        for k in range(10):
            with open(d.conf_path, "w") as f:
                f.write(alt if k % 2 == 0 else base)
            rcs.append(d.ctl("reload")[0])
        if rcs != [0] * 10:
            t.eq(rcs, [0] * 10, "round %d: 10 reloads in a row right after d2 started: exit 0" % rounds)
        try:
            wait_until(lambda: d.peer("s2")["connected"] and s.peer("d2")["connected"], 10,
                       "d2's session with s2 after the reloads")
        except Failure:
            up = False
            break
        d.stop(timeout=10)
        wait_until(lambda: not s.peer("d2")["connected"], 10, "s2 to see d2 gone")
    ss = subprocess.run(["ss", "-tn", "sport = :%d" % s.port], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT).stdout.decode()
    t.ok(up, "d2's session with s2 comes up after redials during its first dial (%d rounds)" % rounds,
         "round %d: s2's side of its connections (Recv-Q never read):\n%s" % (rounds, ss))
    if not d.running():
        d.start()
        d.wait_ready()
    rc, _ = s.submit(LIST, make_msg("race@example.org"))
    if up:
        wait_until(lambda: ids_at(d, "race@"), 20, "a post from s2 at d2")
    t.ok(rc == 0 and ids_at(d, "race@"), "a post at s2 reaches d2")


def main(t, fed):
    for part in (hub, yield_reload, backlog, dial_race):
        t0 = time.monotonic()
        part(t, fed)
        t.note("%s: %.1f s" % (part.__name__, time.monotonic() - t0))


if __name__ == "__main__":
    run(main)
