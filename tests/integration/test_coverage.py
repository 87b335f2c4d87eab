"""
test_coverage: the commands and keys of the manuals that no other test
exercises, each on real relays with its behaviour asserted.

- Command lines: `interlistctl -h/--help/--version`, an unknown verb (64);
  `interlistd -h/--help/--version`, a bad option (64).
- `status_socket` left out: the socket is DATA_DIR/status.sock (mode 0660);
  `interlistctl -c FILE status` and `--config FILE` find it, `-s`/`--socket`
  reach it too; SIGINT stops the daemon with exit 0 and removes the socket.
- `max_rate`: a's [peer b] has max_rate = 10; 30 posts queued for b while b
  is down. Once b's session is up, b has not received all 30 one second
  later and the drain takes about (30 - 10) / 10 s; all 30 arrive. Control:
  without max_rate the same 30 arrive at once. (max_rate limits what a SENDS
  to b: see the note in main().)
- `hop_limit` in [relay]: a line a - b - c where a has hop_limit = 2; a's
  post reaches b (path a!b) and b does not pass it on to c (it counts
  hop_limit and logs not_forwarded; a relay that passes such a message on
  anyway is refused by the next, see test_refusals); c's post (default 16)
  reaches a.
- `lists` in [peer]: a carries incidents and ops, a's [peer b] has
  lists = incidents: ops posts are not queued for b, incidents posts are;
  an ops post from b is refused by a.
- Key rotation (admin manual section 6): b lists a's old and new sign_pub
  (comma form, checked with `interlistctl check`, `fingerprint` of the copy
  compared); a reload that changes sign_key is refused (78); a restarts with
  the new key; a message signed with the old key and still queued, and new
  ones, all reach b; b drops the old key and reloads, a's posts still
  arrive; b keeping only the old key refuses a's posts.
- `log_level`: debug writes level=debug lines (event=accepted), info does
  not; a reload switches info -> debug and debug -> warn (no info lines for
  the next message, warn lines still written).
- `max_deliveries`: exec: lists with max_deliveries = 1 and 3 and a program
  that takes 0.8 s: never more than 1 (resp. 3) at once, and the second list
  does run several at once.
- Restore (admin manual section 5): `interlistctl -c FILE backup`, more
  posts, stop, the copy put in place of interlist.db (-wal/-shm removed),
  start: the relay is back at the backup (3 queued, not 5).
"""
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time
import types

from harness import HEX64, INTERLISTCTL, INTERLISTD, Failure, Relay, make_msg, run, wait_until

LIST = "incidents"


def sh(args, input=None, timeout=30):
    r = subprocess.run(args, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def up(*relays):
    for r in relays:
        if not r.running():
            r.start()
    for r in relays:
        r.wait_ready()


def connected(*relays):
    return all(p["connected"] for r in relays for p in r.status()["peers"])


def post(r, lst, tag, **kw):
    rc, out = r.submit(lst, make_msg("%s@example.org" % tag, subject=tag, **kw))
    if rc != 0 or not HEX64.match(out):
        raise Failure("submit %s at %s: exit %d %r (%s)" % (tag, r.id, rc, out, r.last_submit_stderr))
    return out


# ---------------------------------------------------------------------------
def check_cli(t):
    rc, out, err = sh([INTERLISTCTL, "--help"])
    t.ok(rc == 0 and "usage: interlistctl" in out, "interlistctl --help: exit 0, usage", (rc, out, err))
    rc, out2, _ = sh([INTERLISTCTL, "-h"])
    t.ok(rc == 0 and out2 == out, "interlistctl -h prints the same usage", (rc, out2))
    for verb in ("init", "check", "fingerprint", "submit", "status", "peers", "metrics", "reload",
                 "failed", "retry", "queue", "purge", "backup"):
        t.ok(re.search(r"^\s+interlistctl .*\b%s\b" % verb, out, re.M), "usage names the verb %s" % verb)
    rc, out, _ = sh([INTERLISTCTL, "--version"])
    t.ok(rc == 0 and re.match(r"^interlistctl \d+\.\d+\.\d+$", out.strip()), "interlistctl --version", out)
    rc, _, err = sh([INTERLISTCTL, "-s", "/nonexistent", "frobnicate"])
    t.eq(rc, 64, "interlistctl with an unknown verb exits 64 (%s)" % (err.splitlines() or [""])[0])
    for opt in ("-h", "--help"):
        rc, out, err = sh([INTERLISTD, opt])
        t.ok(rc == 0 and "usage: interlistd" in out + err, "interlistd %s: exit 0, usage" % opt, (rc, out, err))
    rc, out, _ = sh([INTERLISTD, "--version"])
    t.ok(rc == 0 and re.match(r"^interlistd \d+\.\d+\.\d+$", out.strip()), "interlistd --version", out)
    rc, out, err = sh([INTERLISTD, "--no-such-option"])
    t.eq(rc, 64, "interlistd with a bad option exits 64")


# ---------------------------------------------------------------------------
def check_default_socket(t, fed):
    d = fed.relay("dsock")
    # The harness writes status_socket: leave it out of this relay's file.
    d.config_text = lambda: re.sub(r"(?m)^status_socket = .*\n", "", Relay.config_text(d))
    d.sock = os.path.join(d.data, "status.sock")
    d.start()
    st = d.wait_ready()
    t.ok("status_socket" not in open(d.conf_path).read(), "default socket: the config has no status_socket")
    t.eq(st["id"], "dsock", "default socket: the daemon answers on DATA_DIR/status.sock")
    t.eq(stat.S_IMODE(os.stat(d.sock).st_mode), 0o660, "default socket: mode 0660")
    t.ok(d.log_events("listening", path=d.sock), "default socket: event=listening path=DATA_DIR/status.sock")
    for opt in ("-c", "--config"):
        rc, out, err = sh([INTERLISTCTL, opt, d.conf_path, "status"])
        ok = rc == 0
        try:
            ok = ok and json.loads(out)["id"] == "dsock"
        except ValueError:
            ok = False
        t.ok(ok, "interlistctl %s FILE status finds the default socket" % opt, (rc, out, err))
    rc, out, err = sh([INTERLISTCTL, "-c", d.conf_path, "status", "--human"])
    t.ok(rc == 0 and out.startswith("relay dsock "), "interlistctl -c FILE status --human", (rc, out, err))
    rc, out, err = sh([INTERLISTCTL, "--socket", d.sock, "peers"])
    t.ok(rc == 0 and json.loads(out).get("peers") == [], "interlistctl --socket SOCK peers", (rc, out, err))
    rc, out, err = sh([INTERLISTCTL, "-c", d.conf_path, "submit", LIST],
                      input=make_msg("dsock-1@example.org"))
    t.ok(rc == 0 and HEX64.match(out.strip()), "interlistctl -c FILE submit reaches the default socket",
         (rc, out, err))
    t.eq(d.status()["lists"][0]["ingested"], 1, "... and the post is ingested")
    # A config that cannot be read: 78, whatever the verb.
    rc, _, err = sh([INTERLISTCTL, "-c", os.path.join(fed.tmp, "nope.conf"), "status"])
    t.eq(rc, 78, "interlistctl -c MISSING status exits 78 (%s)" % err.strip())

    # SIGINT stops it like SIGTERM.
    d.proc.send_signal(signal.SIGINT)
    try:
        rc = d.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        rc = None
    t.eq(rc, 0, "SIGINT: interlistd exits 0")
    t.ok(not os.path.exists(d.sock), "SIGINT: the status socket is removed")
    t.ok(d.log_events("signal") and d.log_events("stopped"), "SIGINT: event=signal and event=stopped logged")
    rc, _, _ = sh([INTERLISTCTL, "-c", d.conf_path, "status"])
    t.eq(rc, 69, "interlistctl -c FILE status with the daemon stopped exits 69")


# ---------------------------------------------------------------------------
def drain(a, b, n, timeout=30):
    """Start b (which dials a), wait for the session, then sample how many
    of a's queued posts b has received until it has n. Returns (samples
    [(seconds since session up, received)], seconds to drain)."""
    up(b)
    wait_until(lambda: b.peer(a.id)["connected"], 20, "%s's session to %s" % (b.id, a.id))
    t0 = time.monotonic()
    samples = []
    while True:
        ts = time.monotonic() - t0
        got = b.peer(a.id)["received"]
        samples.append((ts, got))
        if got >= n:
            return samples, ts
        if ts > timeout:
            raise Failure("%s received %d of %d from %s in %d s" % (b.id, got, n, a.id, timeout))
        time.sleep(0.03)


def check_max_rate(t, fed):
    N, RATE = 30, 10
    a = fed.relay("rate-a")
    b = fed.relay("rate-b", listen=False)
    a.add_peer(b, max_rate=RATE)
    b.add_peer(a, dial=True)
    up(a)
    ids = [post(a, LIST, "rate-%d" % i) for i in range(N)]
    t.eq(a.peer(b.id)["queued"], N, "max_rate: %d posts queued at a for b (b not running)" % N)
    samples, took = drain(a, b, N)
    # The first sample taken a full second after the session was seen up.
    at1 = next((got for ts, got in samples if ts >= 1.0), None)
    t.note("max_rate = %d: received %s; all %d after %.2f s" %
           (RATE, [(round(ts, 2), g) for ts, g in samples if ts < 0.05 or ts >= 0.5 and ts % 0.5 < 0.04],
            N, took))
    t.ok(at1 is not None and at1 < N,
         "max_rate = %d: b has not received all %d one second after its session came up (%s)"
         % (RATE, N, at1))
    t.ok(at1 is not None and at1 <= 2 * RATE + 3,
         "max_rate = %d: about one burst plus one second's worth by then (%s <= %d)" % (RATE, at1, 2 * RATE + 3))
    t.ok(took >= (N - RATE) / RATE - 0.5,
         "max_rate = %d: draining %d takes >= %.1f s (%.2f s)" % (RATE, N, (N - RATE) / RATE - 0.5, took))
    wait_until(lambda: set(ids) <= set(b.delivered_ids(LIST)), 20, "the %d posts in b's Maildir" % N)
    t.eq(sorted(b.delivered_ids(LIST)), sorted(ids), "max_rate: all %d arrive, once each" % N)
    t.eq(a.peer(b.id)["queued"], 0, "max_rate: a's queue for b is empty")

    # Control: the same without max_rate drains at once.
    b.stop()
    a.peers = [(b, {})]
    a.write_config()
    rc, out, err = a.ctl("reload")
    t.ok(rc == 0 and "reloaded" in out, "max_rate removed by reload", (rc, out, err))
    ids2 = [post(a, LIST, "norate-%d" % i) for i in range(N)]
    samples, took2 = drain(a, b, N)     # b's counters start again at 0
    t.note("without max_rate: all %d after %.2f s" % (N, took2))
    t.ok(took2 < 1.0 and took2 < took,
         "without max_rate the same %d arrive within 1 s (%.2f s, vs %.2f s limited)" % (N, took2, took))
    wait_until(lambda: set(ids2) <= set(b.delivered_ids(LIST)), 20, "the control posts at b")
    b.stop()
    a.stop()


# ---------------------------------------------------------------------------
def check_hop_limit(t, fed):
    a = fed.relay("hop-a", relay_conf={"hop_limit": 2})
    b = fed.relay("hop-b")
    c = fed.relay("hop-c", listen=False)
    fed.wire_line(a, b, c)
    up(a, b, c)
    wait_until(lambda: connected(a, b, c), 20, "a-b-c sessions up")
    m = post(a, LIST, "hop-from-a")
    wait_until(lambda: m in b.delivered_ids(LIST), 20, "a's post at b")
    f = [x for x in b.delivered(LIST) if x.hdr.get("X-Interlist-Id") == m][0]
    t.eq(f.hdr.get("X-Interlist-Path"), "hop-a!hop-b", "hop_limit = 2: a's post reaches b (path a!b)")
    wait_until(lambda: b.counters()["hop_limit"] == 1, 20, "b holding a's post for its hop limit")
    t.ok(True, "hop_limit = 2: b (second relay) does not forward it, counted as hop_limit")
    wait_until(lambda: b.log_events("not_forwarded", msg=m, reason="hop_limit"), 10,
               "b's not_forwarded line")
    t.ok(True, "b logs event=not_forwarded reason=hop_limit")
    t.eq(b.peer("hop-c")["queued"], 0, "nothing queued at b for c")
    t.eq(c.counters()["hop_limit"], 0, "c never sees it: nothing to refuse")
    t.ok(m not in c.delivered_ids(LIST), "hop_limit: not delivered at c")
    # c's own hop_limit is the default (16): its post crosses b to a.
    m2 = post(c, LIST, "hop-from-c")
    wait_until(lambda: m2 in a.delivered_ids(LIST), 20, "c's post at a")
    f = [x for x in a.delivered(LIST) if x.hdr.get("X-Interlist-Id") == m2][0]
    t.eq(f.hdr.get("X-Interlist-Path"), "hop-c!hop-b!hop-a", "default hop_limit: c's post reaches a (3 relays)")
    t.eq(m not in c.delivered_ids(LIST), True, "a's post still not at c")
    for r in (c, b, a):
        r.stop()


# ---------------------------------------------------------------------------
def check_peer_lists(t, fed):
    OPS = "ops"
    a = fed.relay("lists-a", lists=(LIST, OPS))
    b = fed.relay("lists-b", listen=False, lists=(LIST, OPS))
    a.add_peer(b, lists=[LIST])
    b.add_peer(a, dial=True)
    up(a, b)
    wait_until(lambda: connected(a, b), 20, "session up")
    mo = post(a, OPS, "lists-ops-at-a")
    t.eq(a.peer(b.id)["queued"], 0, "lists = incidents: an ops post at a is not queued for b")
    mi = post(a, LIST, "lists-inc-at-a")
    wait_until(lambda: mi in b.delivered_ids(LIST), 20, "the incidents post at b")
    t.ok(True, "lists = incidents: the incidents post reaches b")
    t.eq(b.delivered_ids(OPS), [], "lists = incidents: b got nothing on ops")
    # b has no lists key (every list): its ops post goes to a, which refuses it.
    r0 = a.peer(b.id)["rejected"]
    mb = post(b, OPS, "lists-ops-at-b")
    wait_until(lambda: a.peer(b.id)["rejected"] == r0 + 1, 20, "a refusing b's ops post")
    t.ok(True, "a refuses an ops post from b (ops is not exchanged with b)")
    wait_until(lambda: b.log_events("refused_by_peer", peer="lists-a", msg=mb), 10, "b's refused_by_peer")
    t.ok(True, "b logs refused_by_peer for it")
    t.eq(a.delivered_ids(OPS), [], "nothing delivered on a's ops list")
    t.ok(mo and mo not in b.delivered_ids(OPS), "a's ops post never reached b")
    b.stop()
    a.stop()


# ---------------------------------------------------------------------------
class RotatingRelay(Relay):
    """A Relay whose sign_key path can be switched (the config's sign_key)."""
    new_sign_key = None

    @property
    def sign_key(self):
        return self.new_sign_key or os.path.join(self.keys, self.id + ".sign.key")


def check_key_rotation(t, fed):
    a = fed.relay("rot-a")
    a.__class__ = RotatingRelay
    b = fed.relay("rot-b", listen=False)
    peers = os.path.join(b.dir, "peers")
    os.makedirs(peers)
    old_pub = os.path.join(peers, "rot-a.sign.pub")
    shutil.copy(a.sign_pub, old_pub)
    # b pins a's certificate and lists a's signing keys (only the old one yet).
    pa = types.SimpleNamespace(id=a.id, tls_cert=a.tls_cert, sign_pub=old_pub, url=a.url)
    a.add_peer(b)
    b.add_peer(pa, dial=True)
    up(a, b)
    wait_until(lambda: connected(a, b), 20, "session up")
    m1 = post(a, LIST, "rot-1-old-key")
    wait_until(lambda: m1 in b.delivered_ids(LIST), 20, "the first post at b")
    t.ok(True, "rotation: a post signed with the old key reaches b")

    # 1. A new key pair, made with init in another folder.
    keys2 = os.path.join(fed.tmp, "rot-a-keys-2027")
    rc, out, err = sh([INTERLISTCTL, "init", "--id", a.id, "--dir", keys2])
    t.eq(rc, 0, "rotation: interlistctl init --id a --dir keys-2027")
    new_key = os.path.join(keys2, a.id + ".sign.key")
    new_pub = os.path.join(peers, "rot-a-2027.sign.pub")
    shutil.copy(os.path.join(keys2, a.id + ".sign.pub"), new_pub)
    # 2. b's operator compares fingerprints, adds the new key next to the old one.
    f_src = sh([INTERLISTCTL, "fingerprint", os.path.join(keys2, a.id + ".sign.pub")])[1].strip()
    f_copy = sh([INTERLISTCTL, "fingerprint", new_pub])[1].strip()
    f_key = sh([INTERLISTCTL, "fingerprint", new_key])[1].strip()
    f_old = sh([INTERLISTCTL, "fingerprint", old_pub])[1].strip()
    t.ok(f_src.startswith("SHA256:") and f_src == f_copy == f_key and f_src != f_old,
         "rotation: fingerprint of the received copy = the original = the private key's, not the old one",
         (f_src, f_copy, f_key, f_old))
    pa.sign_pub = "%s, %s" % (old_pub, new_pub)
    b.write_config()
    rc, out, err = sh([INTERLISTCTL, "-c", b.conf_path, "check"])
    t.ok(rc == 0 and out.strip() == b.conf_path + ": ok", "rotation: check accepts sign_pub = old, new",
         (rc, out, err))
    rc, out, err = b.ctl("reload")
    t.ok(rc == 0 and "reloaded" in out, "rotation: b reloads with both keys", (rc, out, err))
    # A message signed with the old key, still queued when a switches.
    b.stop()
    m2 = post(a, LIST, "rot-2-old-key-queued")
    t.eq(a.peer(b.id)["queued"], 1, "rotation: a post signed with the old key waits in a's queue")
    # 3. sign_key cannot change on reload; a restart applies it.
    a.new_sign_key = new_key
    a.write_config()
    rc, out, err = a.ctl("reload")
    t.ok(rc == 78 and "sign_key cannot change on reload" in err, "rotation: a reload changing sign_key is "
         "refused (78, names sign_key)", (rc, out, err))
    t.ok(a.running(), "rotation: a keeps running after the refused reload")
    a.stop()
    a.restart()
    wait_until(lambda: len(a.log_events("started")) == 2, 10, "a's second event=started")
    t.ok(True, "rotation: a restarted with the new sign_key")
    m3 = post(a, LIST, "rot-3-new-key")
    up(b)
    wait_until(lambda: {m2, m3} <= set(b.delivered_ids(LIST)), 20, "the old-key and new-key posts at b")
    t.ok(True, "rotation: b accepts the queued old-key post and the new-key post (both keys listed)")
    c = b.counters()
    t.eq((c["bad_signature"], c["auth_failed"]), (0, 0), "rotation: no bad_signature, no auth_failed at b")
    wait_until(lambda: a.peer(b.id)["queued"] == 0, 20, "a's queue for b empty")
    # 4. Queues empty: b removes the old key and reloads.
    pa.sign_pub = new_pub
    b.write_config()
    rc, out, err = b.ctl("reload")
    t.ok(rc == 0 and "reloaded" in out, "rotation: b reloads with the new key only", (rc, out, err))
    m4 = post(a, LIST, "rot-4-after-old-removed")
    wait_until(lambda: m4 in b.delivered_ids(LIST), 20, "a's post after the old key was removed")
    t.ok(True, "rotation: with only the new key listed, b still accepts a's posts")
    # Control: a b that knows only the old key refuses a's new posts.
    pa.sign_pub = old_pub
    b.write_config()
    rc, out, err = b.ctl("reload")
    t.eq(rc, 0, "control: b reloads with only the old key")
    c0 = b.counters()
    m5 = post(a, LIST, "rot-5-old-only")
    wait_until(lambda: (b.counters()["bad_signature"] + b.counters()["auth_failed"]
                        > c0["bad_signature"] + c0["auth_failed"]), 20, "b refusing a")
    c1 = b.counters()
    t.note("control refusal at b: bad_signature +%d, auth_failed +%d"
           % (c1["bad_signature"] - c0["bad_signature"], c1["auth_failed"] - c0["auth_failed"]))
    t.ok(True, "control: b with only the old key refuses a (bad_signature or auth_failed)")
    t.ok(m5 not in b.delivered_ids(LIST), "control: the post signed with the new key is not delivered at b")
    t.eq(sorted(b.delivered_ids(LIST)), sorted([m1, m2, m3, m4]), "rotation: b holds m1..m4, once each")
    b.stop()
    a.stop()


# ---------------------------------------------------------------------------
def levels_of(r, msg):
    return sorted({re.search(r" level=(\w+) ", l).group(1) for l in r.log().splitlines()
                   if (" msg=%s" % msg) in l})


def check_log_level(t, fed):
    d = fed.relay("log-d", listen=False, log_level="debug")
    i = fed.relay("log-i")                       # log_level = info (the harness's default)
    d.add_peer(i, dial=True)                     # the dialer logs event=connected (debug)
    i.add_peer(d)
    up(d, i)
    wait_until(lambda: connected(d, i), 20, "session up")
    m1 = post(i, LIST, "log-1")
    wait_until(lambda: m1 in d.delivered_ids(LIST), 20, "i's post at d")
    wait_until(lambda: d.log_events("accepted", msg=m1), 10, "d's debug line for m1")
    line = d.log_events("accepted", msg=m1)[0]
    t.ok(" level=debug relay=log-d sub=relay event=accepted " in line,
         "log_level = debug: level=debug event=accepted for a peer's message", line)
    t.ok(d.log_events("connected"), "log_level = debug: event=connected (debug) logged")
    t.eq([l for l in i.log().splitlines() if " level=debug " in l], [], "log_level = info: no debug lines")
    m2 = post(d, LIST, "log-2")
    wait_until(lambda: m2 in i.delivered_ids(LIST), 20, "d's post at i")
    wait_until(lambda: i.log_events("delivered", msg=m2), 10, "i's delivered line")
    t.eq(levels_of(i, m2), ["info"], "log_level = info: info lines only for m2 (delivered), no debug")

    # info -> debug by reload
    i.log_level = "debug"
    i.write_config()
    rc, out, err = i.ctl("reload")
    t.eq(rc, 0, "reload log_level info -> debug")
    m3 = post(d, LIST, "log-3")
    wait_until(lambda: i.log_events("accepted", msg=m3) and i.log_events("delivered", msg=m3), 20,
               "i's accepted (debug) and delivered lines for m3")
    t.eq(levels_of(i, m3), ["debug", "info"], "after the reload i writes debug lines (accepted) too")

    # debug -> warn by reload: nothing below warn, warn still written
    d.log_level = "warn"
    d.write_config()
    rc, out, err = d.ctl("reload")
    t.eq(rc, 0, "reload log_level debug -> warn")
    n_lines = len(d.log().splitlines())
    m4 = post(i, LIST, "log-4")
    wait_until(lambda: m4 in d.delivered_ids(LIST), 20, "i's post at d")
    wait_until(lambda: d.list_status(LIST)["pending"] == 0, 10, "d's delivery done")
    t.eq(levels_of(d, m4), [], "log_level = warn: no accepted/delivered line for m4")
    with open(d.conf_path, "a") as f:
        f.write("garbage line\n")
    rc, _, _ = d.ctl("reload")
    t.eq(rc, 78, "a broken config is refused")
    wait_until(lambda: d.log_events("reload_refused"), 10, "reload_refused in d's log")
    new = d.log().splitlines()[n_lines:]
    t.ok(any(" level=warn " in l and " event=reload_refused " in l for l in new),
         "log_level = warn: warn lines (reload_refused) still written")
    t.eq([l for l in new if re.search(r" level=(info|debug) ", l)], [],
         "log_level = warn: no info or debug lines since the reload")
    i.stop()
    d.write_config()
    d.stop()


# ---------------------------------------------------------------------------
SLOW_EXEC = r"""
import os, sys, time
log = sys.argv[1]
def note(what):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, ("%s %.6f %d\n" % (what, time.time(), os.getpid())).encode())
    os.close(fd)
note("start")
sys.stdin.buffer.read()
time.sleep(0.8)
note("end")
"""


def max_overlap(path):
    events = []
    with open(path) as f:
        for line in f:
            what, ts, _ = line.split()
            events.append((float(ts), 0 if what == "end" else 1))
    cur = best = 0
    for _, kind in sorted(events):
        cur += 1 if kind else -1
        best = max(best, cur)
    return best, sum(k for _, k in events)


def check_max_deliveries(t, fed):
    script = os.path.join(fed.tmp, "slow_exec.py")
    with open(script, "w") as f:
        f.write(SLOW_EXEC)
    logs = {n: os.path.join(fed.tmp, "exec-%s.log" % n) for n in ("one", "three")}
    lists = ("one", "three")
    conf = {n: {"deliver": "exec:/usr/bin/python3 %s %s" % (script, logs[n]),
                "max_deliveries": 1 if n == "one" else 3} for n in lists}
    a = fed.relay("md-a", lists=lists)
    b = fed.relay("md-b", listen=False, lists=lists, list_conf=conf)
    a.add_peer(b)
    b.add_peer(a, dial=True)
    up(a)
    for n in lists:
        for k in range(4):
            post(a, n, "md-%s-%d" % (n, k))
    up(b)
    wait_until(lambda: all(b.list_status(n)["delivered"] == 4 for n in lists), 40,
               "the 8 exec deliveries at b")
    wait_until(lambda: all(max_overlap(logs[n])[1] == 4 for n in lists), 5, "the exec logs")
    one, three = max_overlap(logs["one"])[0], max_overlap(logs["three"])[0]
    t.note("most deliveries at once: one %d, three %d" % (one, three))
    t.eq(one, 1, "max_deliveries = 1: the 4 deliveries run one at a time")
    t.ok(1 < three <= 3, "max_deliveries = 3: several at once, never more than 3 (%d)" % three)
    t.eq([b.list_status(n)["failed"] for n in lists], [0, 0], "no delivery failed")
    b.stop()
    a.stop()


# ---------------------------------------------------------------------------
def check_restore(t, fed):
    a = fed.relay("rs-a")
    c = fed.relay("rs-c", listen=False)        # a peer that never runs: a's queue for it grows
    a.add_peer(c)
    up(a)
    first = [post(a, LIST, "rs-%d" % k) for k in range(3)]
    out = os.path.join(fed.tmp, "rs-backup.db")
    rc, o, err = sh([INTERLISTCTL, "-c", a.conf_path, "backup", out])
    t.ok(rc == 0 and o.strip() == "backup %s: 3 messages" % out, "restore: backup while running", (rc, o, err))
    for k in range(2):
        post(a, LIST, "rs-late-%d" % k)
    q = json.loads(a.command("queue rs-c"))
    t.eq(q["queued"], 5, "restore: 5 queued for c before the restore")
    a.stop()
    db = os.path.join(a.data, "interlist.db")
    for ext in ("-wal", "-shm"):
        if os.path.exists(db + ext):
            os.unlink(db + ext)
    shutil.copy(out, db)
    os.chmod(db, 0o600)
    a.restart()
    q = json.loads(a.command("queue rs-c"))
    t.eq(sorted(m["id"] for m in q["messages"]), sorted(first),
         "restore: the relay is back at the backup (the 3 earlier posts queued, not the 2 later)")
    rc, o = a.submit(LIST, make_msg("rs-late-0@example.org", subject="rs-late-0"))
    t.ok(rc == 0 and HEX64.match(o) and o not in first and a.peer(c.id)["queued"] == 4,
         "restore: a post lost by the restore is taken again as new when reposted", (rc, o))
    # The restored copy (VACUUM INTO: a rollback-journal file) has no -wal
    # yet when the daemon sets up deferred sync: that must not be an error.
    errors = [l for l in a.log().split("# ---- interlistd start")[-1].splitlines() if " level=error " in l]
    t.eq(errors, [], "restore: the daemon starts on the restored store without an error")
    a.stop()


def main(t, fed):
    # max_rate limits what this relay sends to the peer (push and pull):
    # a's [peer b] max_rate slows a -> b.
    check_cli(t)
    check_default_socket(t, fed)
    check_max_rate(t, fed)
    check_hop_limit(t, fed)
    check_peer_lists(t, fed)
    check_key_rotation(t, fed)
    check_log_level(t, fed)
    check_max_deliveries(t, fed)
    check_restore(t, fed)


if __name__ == "__main__":
    run(main)
