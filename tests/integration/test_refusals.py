"""
test_refusals: relay a (retention 1 day, max_message_bytes 4096) with peers
b and c configured (their keys only: neither runs). ilforge plays b.

- x, a relay whose certificate a has not pinned, dials a: TLS refuses it
  below the relay's code, so x never gets a session and a's state is
  untouched; ilforge with x's certificate gets no HELLO answer.
- ilforge with b's valid certificate claiming to be c: AUTH, auth_failed.
- Envelopes b pushes that a must refuse: bad signature, unknown origin,
  stale (past and future), too large, plus unknown list, a path not ending
  with the sender, TLP RED. Each has its result, counter, b's rejected count
  and an event=refused log line with reason=NAME.
- interlistctl submit refusals and exit statuses (65, 75, 69).
"""
import os
import subprocess

from harness import HEX64, INTERLISTCTL, ilforge, make_msg, run, wait_until

LIST = "incidents"
DAY_MS = 86400 * 1000


def main(t, fed):
    a = fed.relay("a", relay_conf={"retention_days": 1, "max_message_bytes": 4096})
    b = fed.relay("b", listen=False)
    c = fed.relay("c", listen=False)
    x = fed.relay("x", listen=False)
    a.add_peer(b)
    a.add_peer(c)
    x.add_peer(a, dial=True)
    a.start()
    a.wait_ready()

    def peer_view(st):
        return {p["id"]: (p["connected"], p["connects"], p["received"], p["rejected"]) for p in st["peers"]}

    st0 = a.status()
    t.eq(peer_view(st0), {"b": (False, 0, 0, 0), "c": (False, 0, 0, 0)}, "a starts with b and c unconnected")

    # ---- x: certificate not pinned at a ----
    x.start()
    x.wait_ready()
    # A negative check: x keeps dialing and TLS keeps failing. We watch for a
    # bounded 3 s (x's first dials come within ~0.5 s) that no session ever
    # comes up on either side.
    seen_up = []

    def x_never_up():
        if x.peer("a")["connected"]:
            seen_up.append("x")
        if any(p["connected"] for p in a.status()["peers"]):
            seen_up.append("a")
        return False
    try:
        wait_until(x_never_up, 3, "(bounded negative wait)")
    except Exception:
        pass
    t.eq(seen_up, [], "x (unpinned certificate) never gets a session with a (watched 3 s)")
    xp = x.peer("a")
    t.ok(xp["connected"] is False and xp["connects"] == 0 and xp["last_seen"] is None,
         "x shows peer a connected=false, connects=0, last_seen=null", xp)
    st1 = a.status()
    t.eq(peer_view(st1), peer_view(st0), "a's peers are as before x tried")
    t.eq(st1["counters"]["auth_failed"], 0, "TLS refused x below the relay: no auth_failed at a")
    x.stop()

    rc, out, kv = ilforge(a, x, "x", x.sign_key, "--no-push", timeout=30)
    t.ok(kv.get("hello") != "0", "ilforge with x's certificate gets no hello=0 (%s)"
         % (out.strip().replace("\n", " ") or "no output"), out)

    # ---- a positive control: ilforge as b, done right ----
    rc, out, kv = ilforge(a, b, "b", b.sign_key)
    t.eq((rc, kv.get("hello"), kv.get("push"), kv.get("result")), (0, "0", "0", "accepted"),
         "ilforge as b with b's keys: hello=0, result=accepted")
    wait_until(lambda: len(a.maildir_files(LIST)) == 1, 10, "b's forged-but-valid post delivered at a")
    t.ok(True, "a delivers b's valid post")

    # ---- replay: the same signed PUSH request twice ----
    r0 = a.counters()["replays"]
    m0 = len(a.maildir_files(LIST))
    rmsg = os.path.join(fed.tmp, "replay.eml")
    with open(rmsg, "wb") as f:
        f.write(make_msg("replay@example.org", subject="sent twice"))
    rc, out, kv = ilforge(a, b, "b", b.sign_key, "--msg", rmsg, "--replay")
    t.eq((kv.get("push"), kv.get("result"), kv.get("replay")), ("0", "accepted", "6"),
         "a replayed request (same nonce) is answered REPLAY (6)")
    t.eq(a.counters()["replays"], r0 + 1, "counters.replays increments")
    wait_until(lambda: len(a.maildir_files(LIST)) == m0 + 1, 10, "the first copy delivered at a")
    t.eq(len(a.maildir_files(LIST)), m0 + 1, "the replayed post is delivered once")

    # ---- impersonation: b's certificate and signing key, claiming to be c ----
    before = a.counters()["auth_failed"]
    rc, out, kv = ilforge(a, b, "c", b.sign_key, "--no-push")
    t.eq(kv.get("hello"), "1", "b claiming to be c: hello=1 (AUTH)")
    t.eq(a.counters()["auth_failed"], before + 1, "a's auth_failed increments")
    cp = a.peer("c")
    t.ok(cp["connected"] is False and cp["connects"] == 0 and cp["last_seen"] is None,
         "c never connected at a", cp)
    t.ok(wait_until(lambda: a.log_events("auth_failed", claimed="c"), 5, "auth_failed log line"),
         "a logs event=auth_failed claimed=c")

    # ---- envelopes a must refuse ----
    big = os.path.join(fed.tmp, "big.eml")
    with open(big, "wb") as f:
        f.write(make_msg("big@example.org", subject="too big", body=("x" * 79 + "\n") * 128))
    cases = [
        # (what, extra ilforge args, result, counter)
        ("origin signature tampered", ["--tamper-sig"], "bad_signature", "bad_signature"),
        ("unknown origin zz", ["--origin", "zz", "--origin-key", x.sign_key, "--path", "zz,b"],
         "unknown_origin", "unknown_origin"),
        ("origin time older than retention + 1 day", ["--time-offset-ms", -(1 + 1) * DAY_MS],
         "stale", "stale"),
        ("origin time 11 minutes in the future", ["--time-offset-ms", 11 * 60 * 1000], "stale", "stale"),
        ("10 KiB message over max_message_bytes 4096", ["--msg", big], "too_large", "too_large"),
        ("list a does not carry", ["--list", "nosuch"], "unknown_list", "unknown_list"),
        ("path not ending with the sender", ["--path", "b,c"], "malformed", "malformed"),
        ("TLP RED", ["--tlp", "4"], "held_tlp", "held_tlp"),
        # ilforge signs with hop_limit 16: a path of 16 relays is at the limit.
        ("path as long as the hop limit", ["--path", ",".join(["b"] + ["x%d" % i for i in range(14)]
                                                              + ["b"])], "hop_limit", "hop_limit"),
    ]
    for what, args, result, counter in cases:
        c0 = a.counters()
        r0 = a.peer("b")["rejected"]
        nlog = len(a.log_events("refused", reason=result))
        rc, out, kv = ilforge(a, b, "b", b.sign_key, *args)
        t.eq((kv.get("hello"), kv.get("push"), kv.get("result")), ("0", "0", result),
             "%s: result=%s" % (what, result))
        c1 = a.counters()
        t.eq(c1[counter], c0[counter] + 1, "%s: counters.%s increments" % (what, counter))
        changed = {k for k in c1 if c1[k] != c0[k]}
        t.eq(changed, {counter}, "%s: no other counter moves" % what)
        t.eq(a.peer("b")["rejected"], r0 + 1, "%s: peer b's rejected increments" % what)
        t.ok(wait_until(lambda: len(a.log_events("refused", reason=result)) > nlog, 5,
                        "event=refused reason=%s in a's log" % result),
             "%s: a logs event=refused reason=%s" % (what, result))
    t.eq(a.counters()["bad_signature"], 1, "counters.bad_signature == 1")
    t.eq(len(a.maildir_files(LIST)), 2, "no refused envelope was delivered (only the two valid ones)")
    t.eq(a.counters()["accepted"], 2, "a accepted only the two valid ones")

    # ---- interlistctl submit refusals ----
    ok_msg = make_msg("local-1@example.org")
    rc, out = a.submit(LIST, ok_msg)
    t.ok(rc == 0 and HEX64.match(out), "a good submit at a works (control)", (rc, out))
    submits = [
        ("no blank line after the header", b"From: a@example.org\nMessage-ID: <nb@example.org>\n"
         b"Subject: no separator\n", LIST, 65),
        ("no Message-ID", b"From: a@example.org\nSubject: no id\n\nbody\n", LIST, 65),
        ("unknown list", make_msg("ul@example.org"), "nosuch", 65),
        # The daemon answers "err 65 message too large" as soon as it reads
        # the length on the command line (interlistctl -s does not know the
        # limit, so the daemon must say it).
        ("10 KiB over max_message_bytes", open(big, "rb").read(), LIST, 65),
    ]
    c_before = a.counters()
    for what, data, lst, code in submits:
        rc, out = a.submit(lst, data)
        t.eq((rc, out), (code, ""), "submit -s with %s: exit %d, nothing printed (%s)"
             % (what, code, a.last_submit_stderr.strip()))
    c_after = a.counters()
    t.eq({k: c_after[k] - c_before[k] for k in ("malformed", "unknown_list", "too_large")},
         {"malformed": 2, "unknown_list": 1, "too_large": 1},
         "each refused submit is counted: 2 malformed, 1 unknown list, 1 too large")
    # The early answer races the client's send and the daemon's close (an
    # unread body makes the kernel reset the connection): try it 20 times, so
    # that a lost answer (exit 75: an MTA would retry forever) cannot slip by.
    outcomes = {}
    for i in range(20):
        rc, out = a.submit(LIST, submits[-1][1])
        key = (rc, a.last_submit_stderr.strip().split(": ")[-1])
        outcomes[key] = outcomes.get(key, 0) + 1
    t.eq(sorted(outcomes), [(65, "message too large")],
         "20 more over-limit submits -s: every one exits 65 (outcomes: %r)" % outcomes)
    # With -c the client reads max_message_bytes itself, sends only the
    # size, and the daemon still counts and logs the refusal.
    tl0 = a.counters()["too_large"]
    with open(big, "rb") as f:
        r = subprocess.run([INTERLISTCTL, "-c", a.conf_path, "submit", LIST], stdin=f, capture_output=True)
    t.eq(r.returncode, 65, "submit -c FILE with a message over max_message_bytes: exit 65 (%s)"
         % r.stderr.decode().strip())
    t.eq(a.counters()["too_large"] - tl0, 1, "submit -c: the daemon counts it in too_large")
    t.ok(a.log_events("submit_refused", list=LIST, bytes=str(os.path.getsize(big))),
         "submit -c: the daemon logs submit_refused with the post's real size")
    # Just over the limit (read to its end, under interlistctl's first
    # buffer size): the same, with its size.
    near = make_msg("near@example.org", body="n" * 4200 + "\n")
    r = subprocess.run([INTERLISTCTL, "-c", a.conf_path, "submit", LIST], input=near, capture_output=True)
    t.eq(r.returncode, 65, "submit -c of a post just over the limit: exit 65")
    t.eq(a.counters()["too_large"] - tl0, 2, "submit -c just over the limit: counted in too_large")
    t.ok(a.log_events("submit_refused", list=LIST, bytes=str(len(near))),
         "submit -c just over the limit: logged with its size")
    ls = a.list_status(LIST)
    t.eq(ls["ingested"], 1, "only the good local post was ingested")

    a.stop()
    t.ok(not os.path.exists(a.sock), "a removed its status socket on SIGTERM")
    rc, out = a.submit(LIST, make_msg("down@example.org"))
    t.eq(rc, 75, "submit while the daemon is down (socket missing): exit 75")
    with open(big, "rb") as f:
        r = subprocess.run([INTERLISTCTL, "-c", a.conf_path, "submit", LIST], stdin=f, capture_output=True)
    t.eq(r.returncode, 65, "submit -c of a too large post while the daemon is down: still 65 (a bounce)")
    rc, out, err = a.ctl("status")
    t.eq(rc, 69, "status while the daemon is down: exit 69")
    r = subprocess.run([INTERLISTCTL, "-s", "/nonexistent", "status"], capture_output=True)
    t.eq(r.returncode, 69, "interlistctl -s /nonexistent status: exit 69")


if __name__ == "__main__":
    run(main)
