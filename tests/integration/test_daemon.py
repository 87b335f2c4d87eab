"""
test_daemon: the daemon's life cycle and its status contract.

- A bad config makes interlistd exit 78 with "FILE:LINE: ..." on stderr
  (FILE exactly as given on the command line), before it listens.
- The status JSON has every field of the contract, with the right types;
  last_seen is null for a peer never heard from.
- A second interlistd on the same config refuses to start (the status socket
  is in use) with a non-zero exit and leaves the first one alone.
- SIGTERM: exit 0, status socket removed.
"""
import os
import socket

from harness import make_msg, port_open, run, run_daemon

CONTRACT_TOP = {"id": str, "version": str, "uptime_s": int, "peers": list, "lists": list, "counters": dict}
CONTRACT_PEER = {"id": str, "connected": bool, "connects": int, "queued": int, "sent": int,
                 "received": int, "rejected": int, "last_seen": (int, type(None))}
CONTRACT_LIST = {"name": str, "ingested": int, "delivered": int, "pending": int, "failed": int}
CONTRACT_COUNTERS = ["accepted", "duplicates", "bad_signature", "unknown_origin", "auth_failed", "loops",
                     "too_large", "stale", "held_tlp", "malformed", "unknown_list", "hop_limit", "expired"]


def check_fields(t, obj, contract, what):
    missing = [k for k in contract if k not in obj]
    t.eq(missing, [], "%s has every contract field" % what)
    wrong = {k: type(obj[k]).__name__ for k, ty in contract.items()
             if k in obj and (not isinstance(obj[k], ty) or (ty is int and isinstance(obj[k], bool)))}
    t.eq(wrong, {}, "%s fields have the contract types" % what)


def bad_config(t, fed, a, name, mutate, want_line, want_text, cwd_relative=True):
    """Write a's config changed by mutate(lines) -> lines to NAME, run
    interlistd on it; expect exit 78 and 'NAME:LINE:' first on stderr."""
    lines = a.config_text().splitlines()
    lines = mutate(lines)
    path = os.path.join(a.dir, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    arg = name if cwd_relative else path
    rc, out, err = run_daemon(["-c", arg], cwd=a.dir, timeout=15)
    first = err.splitlines()[0] if err else ""
    prefix = "%s:%d:" % (arg, want_line)
    t.eq(rc, 78, "%s: exit 78" % what_of(name, want_text))
    t.ok(first.startswith(prefix) and want_text in first,
         "%s: stderr starts with '%s' and names the problem" % (what_of(name, want_text), prefix),
         "stderr: %r" % err[:500])
    t.ok(not port_open(a.port), "%s: nothing listens on the configured port" % name)
    t.ok(not os.path.exists(a.sock), "%s: no status socket was created" % name)


def what_of(name, text):
    return "bad config %s (%s)" % (name, text)


def main(t, fed):
    a = fed.relay("a")
    p = fed.relay("p", listen=False)        # a peer that never runs
    a.add_peer(p)

    # ---- bad configurations ----
    def line_of(lines, prefix):
        return next(i for i, l in enumerate(lines) if l.startswith(prefix)) + 1

    base = a.config_text().splitlines()
    r_line = line_of(base, "[relay]")

    def out_of_range(lines):
        return lines[:r_line] + ["retention_days = 0"] + lines[r_line:]
    bad_config(t, fed, a, "range.conf", out_of_range, r_line + 1, "retention_days")

    def unknown_key(lines):
        return lines[:r_line] + ["no_such_key = 1"] + lines[r_line:]
    bad_config(t, fed, a, "unknown.conf", unknown_key, r_line + 1, "no_such_key", cwd_relative=False)

    pub_line = line_of(base, "sign_pub = ")

    def missing_pub(lines):
        return [l if i + 1 != pub_line else "sign_pub = " + os.path.join(a.dir, "missing.pub")
                for i, l in enumerate(lines)]
    bad_config(t, fed, a, "nopub.conf", missing_pub, pub_line, "missing.pub")

    rc, out, err = run_daemon(["-c", "nonexistent.conf"], cwd=a.dir)
    t.ok(rc == 78 and err.startswith("nonexistent.conf:0:"),
         "missing config file: exit 78, 'nonexistent.conf:0:' on stderr", (rc, err))

    # ---- a good start, the status contract ----
    a.start()
    st = a.wait_ready()
    t.ok(port_open(a.port), "a listens once status answers")
    check_fields(t, st, CONTRACT_TOP, "status")
    t.eq((st["id"], len(st["peers"]), len(st["lists"])), ("a", 1, 1), "status id, one peer, one list")
    if st["peers"]:
        check_fields(t, st["peers"][0], CONTRACT_PEER, "peers[0]")
        pp = st["peers"][0]
        t.eq((pp["id"], pp["connected"], pp["connects"], pp["last_seen"]), ("p", False, 0, None),
             "peer p: connected=false, connects=0, last_seen=null before any contact")
    if st["lists"]:
        check_fields(t, st["lists"][0], CONTRACT_LIST, "lists[0]")
    t.eq([k for k in CONTRACT_COUNTERS if k not in st["counters"]], [], "counters has every contract field")
    t.eq({k: v for k, v in st["counters"].items() if not isinstance(v, int) or v != 0}, {},
         "every counter is a zero integer at start")
    extra = sorted(set(st["counters"]) - set(CONTRACT_COUNTERS))
    if extra:
        t.note("counters beyond the contract: %s" % ", ".join(extra))
    rc, out, err = a.ctl("status")
    t.ok(rc == 0 and out.strip().startswith("{"), "interlistctl -s SOCK status prints the JSON", (rc, err))

    rc, out = a.submit("incidents", make_msg("daemon-1@example.org"))
    t.eq(rc, 0, "a submit works")
    st2 = a.status()
    t.eq((st2["counters"]["accepted"], st2["lists"][0]["ingested"], st2["peers"][0]["queued"]), (1, 1, 1),
         "after one post: accepted 1, ingested 1, queued 1 for p")
    t.ok(st2["uptime_s"] >= 0, "uptime_s is a number of seconds")

    # ---- a second daemon on the same config ----
    rc, out, err = run_daemon(["-c", a.conf_path], timeout=15)
    t.ok(rc not in (0, None), "a second interlistd on the same config exits non-zero (%r)" % rc, err[-500:])
    t.ok("another interlistd is running" in err, "it says the status socket is in use", err[-500:])
    t.ok(a.running() and os.path.exists(a.sock), "the first daemon and its socket are untouched")
    t.eq(a.status()["counters"]["accepted"], 1, "the first daemon still answers status")
    t.ok(port_open(a.port), "the first daemon still listens")

    # ---- SIGTERM ----
    a.stop()
    t.ok(True, "SIGTERM: exit 0")
    t.ok(not os.path.exists(a.sock), "the status socket is removed")
    t.ok("event=stopped" in a.log(), "the log records event=stopped")
    # A client half-way through its status command when SIGTERM comes: the
    # relay closes it and exits at once (it used to wait for the 30 s idle
    # timer, then touch the status server it had freed: a crash under ASan).
    a.start()
    a.wait_ready()
    half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    half.connect(a.sock)
    half.sendall(b"stat")
    a.wait_ready()          # the half command is read before the signal
    a.stop(timeout=15)      # raises if it waited for the 30 s idle timer
    t.ok(True, "SIGTERM with a status client mid-command: exit 0 within 15 s")
    try:
        half.sendall(b"us\n")
        late = half.recv(100)
    except OSError:
        late = b""
    half.close()
    t.eq(late, b"", "that client is closed without an answer")
    # And it starts again on the same data.
    a.start()
    st3 = a.wait_ready()
    t.eq((st3["counters"]["accepted"], st3["peers"][0]["queued"]), (0, 1),
         "after a restart: counters start at 0, the queue for p is kept")
    a.stop()


if __name__ == "__main__":
    run(main)
