"""
test_lmtp: the LMTP ingest (`ingest = lmtp://HOST:PORT | lmtp:unix:PATH`).

a listens and carries two lists, `incidents` with an LMTP listener on TCP
and `ops` on a Unix socket; b dials a and delivers both to Maildirs. Driven
with smtplib.LMTP and raw sockets: a good message is answered 250 only once
stored and reaches b; several messages per session and fully pipelined
commands keep their replies in order, one per recipient; an oversized
message is 552, a malformed one 550; a connection dropped mid-DATA stores
nothing; concurrent sessions; a session over the limit gets 421; our own
delivery coming back (its X-Interlist-Id known) is 250 and counted as a
loop, not resent; stale and live Unix socket files; shutdown with sessions
open. Every log is checked for sanitizer reports (run it once with an ASan
build's interlistd).
"""
import os
import re
import signal
import smtplib
import socket
import stat
import threading
import time

from harness import HEX64, free_port, make_msg, run, wait_until

LIST, OPS = "incidents", "ops"
MAX = 64 * 1024


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def reply_id(resp):
    m = re.search(rb"as ([0-9a-f]{64})", resp)
    return m.group(1).decode() if m else None


def read_replies(sock, n, timeout=15):
    """Read until n complete replies (a reply ends with a "DDD " line)."""
    sock.settimeout(timeout)
    buf = b""
    replies = []
    while len(replies) < n:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return replies, True
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        if len(line) >= 4 and line[3:4] == b"-":
            continue
        replies.append(line.decode(errors="replace"))
    return replies, False


def read_all(sock, timeout=15):
    sock.settimeout(timeout)
    out = b""
    while True:
        b = sock.recv(65536)
        if not b:
            return out
        out += b


def raw_session(port, data, half_close=False):
    """Send data on a new connection (then, with half_close, shut our side
    down) and read until the server closes: everything it answered."""
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        return read_all(s)
    finally:
        s.close()


def codes(text):
    """The final reply codes in a stream (multi-line 250- lines skipped)."""
    return [l[:3] for l in text.decode(errors="replace").split("\r\n") if len(l) >= 4 and l[3] == " "]


def lmtp_send(target, msg, rcpts=("incidents@relay.test",), sender="owner@example.org",
              before_data=None):
    """One message over smtplib.LMTP (target: TCP port or socket path);
    returns the list of (code, text), one per recipient."""
    lm = smtplib.LMTP(target) if isinstance(target, str) else smtplib.LMTP("127.0.0.1", target)
    try:
        lm.ehlo("mta.example.org")      # LMTP.ehlo sends LHLO
        lm.mail(sender)
        for r in rcpts:
            code, resp = lm.rcpt(r)
            if code != 250:
                raise AssertionError("RCPT %s: %d %r" % (r, code, resp))
        if before_data:
            before_data()
        out = [lm.data(crlf(msg))]
        for _ in rcpts[1:]:
            out.append(lm.getreply())
        lm.quit()
        return out
    finally:
        lm.close()


def main(t, fed):
    port = free_port()
    a = fed.relay("a", lists=(LIST, OPS), relay_conf={"max_message_bytes": MAX})
    sock_path = os.path.join(a.dir, "ops.lmtp")
    a.list_conf = {LIST: {"ingest": "lmtp://127.0.0.1:%d" % port},
                   OPS: {"ingest": "lmtp:unix:" + sock_path}}
    b = fed.relay("b", listen=False, lists=(LIST, OPS))
    a.add_peer(b)
    b.add_peer(a, dial=True)

    # A stale socket file (a crashed daemon's) is replaced at start.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock_path)
    s.close()
    a.start()
    a.wait_ready()
    b.start()
    b.wait_ready()
    wait_until(lambda: a.peer("b")["connected"] and b.peer("a")["connected"], 20, "a-b session up")
    t.ok(True, "a-b session up")
    t.ok(a.log_events("lmtp_listening", list=LIST), "a logs lmtp_listening for %s" % LIST)
    st = os.stat(sock_path)
    t.ok(stat.S_ISSOCK(st.st_mode), "the stale socket file was replaced by a live socket")
    t.eq(stat.S_IMODE(st.st_mode), 0o660, "the LMTP Unix socket is mode 0660")

    # Bound to the configured address only.
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        c.settimeout(2)
        other = c.connect_ex(("127.0.0.2", port))
    finally:
        c.close()
    t.ok(other != 0, "nothing listens on 127.0.0.2:%d (bound to 127.0.0.1 only)" % port)

    # ---- a good message ----
    msg = make_msg("lmtp-1@example.org", subject="first over LMTP", body="Hello.\n.leading dot\n")
    (code, resp), = lmtp_send(port, msg)
    t.eq(code, 250, "a good message is answered 250")
    mid = reply_id(resp)
    t.ok(mid and HEX64.match(mid), "the 250 names the envelope id", resp)
    wait_until(lambda: mid in b.delivered_ids(LIST), 20, "the LMTP post at b")
    f = [d for d in b.delivered(LIST) if d.hdr.get("X-Interlist-Id") == mid][0]
    t.ok(f.orig == msg, "b holds the original bytes (LF, dot kept)", f.orig[:300])
    t.ok(a.log_events("lmtp_accepted", list=LIST, msg=mid), "a logs lmtp_accepted with list and id")
    t.eq(a.list_status(LIST)["ingested"], 1, "a's list counts 1 ingested")

    # The same Message-ID again: a repeat, still 250, nothing new.
    (code, resp), = lmtp_send(port, msg)
    t.eq(code, 250, "a repeated Message-ID is answered 250")
    t.eq(reply_id(resp), mid, "... with the first post's id")

    # ---- several messages in one session, several recipients ----
    lm = smtplib.LMTP("127.0.0.1", port)
    ids = []
    try:
        code, _ = lm.ehlo("mta")
        t.eq(code, 250, "LHLO 250")
        t.ok(lm.has_extn("pipelining") and lm.has_extn("enhancedstatuscodes"),
             "LHLO advertises PIPELINING and ENHANCEDSTATUSCODES")
        t.ok(lm.has_extn("chunking"), "LHLO advertises CHUNKING")
        t.eq(lm.esmtp_features.get("size"), str(MAX), "LHLO advertises SIZE max_message_bytes")
        for i in range(3):
            lm.mail("owner@example.org")
            lm.rcpt("one@relay.test")
            lm.rcpt("two@relay.test")
            c1, r1 = lm.data(crlf(make_msg("lmtp-sess-%d@example.org" % i, body="n=%d\n" % i)))
            c2, r2 = lm.getreply()
            t.ok(c1 == 250 and c2 == 250 and b"<one@relay.test>" in r1 and b"<two@relay.test>" in r2,
                 "message %d: one 250 per recipient, in RCPT order" % i, (c1, r1, c2, r2))
            t.eq(reply_id(r1), reply_id(r2), "message %d: both recipients name the same id" % i)
            ids.append(reply_id(r1))
        lm.quit()
    finally:
        lm.close()
    wait_until(lambda: set(ids) <= set(b.delivered_ids(LIST)), 20, "the session's 3 posts at b")
    t.ok(True, "3 messages of one session reach b, once each")

    # ---- raw pipelining: everything in one write ----
    m1 = crlf(make_msg("lmtp-pipe-1@example.org", body="..x\nline\n"))
    m2 = crlf(make_msg("lmtp-pipe-2@example.org"))
    stuffed = lambda m: re.sub(rb"(?m)^\.", b"..", m)
    blob = (b"LHLO mta\r\nMAIL FROM:<o@x>\r\nRCPT TO:<l@x>\r\nRCPT TO:<m@x>\r\nDATA\r\n" +
            stuffed(m1) + b".\r\nNOOP\r\nMAIL FROM:<o@x>\r\nRCPT TO:<l@x>\r\nDATA\r\n" +
            stuffed(m2) + b".\r\nRSET\r\nHELO x\r\nQUIT\r\n")
    out = raw_session(port, blob)
    t.eq(codes(out), ["220", "250", "250", "250", "250", "354", "250", "250", "250", "250", "250",
                      "354", "250", "250", "500", "221"],
         "pipelined commands: every reply, in order (HELO is 500)")
    pids = re.findall(rb"as ([0-9a-f]{64})", out)
    t.ok(len(pids) == 3 and pids[0] == pids[1] and pids[0] != pids[2], "pipelined: ids per message", out)
    pids = [p.decode() for p in pids]
    wait_until(lambda: {pids[0], pids[2]} <= set(b.delivered_ids(LIST)), 20, "pipelined posts at b")
    f = [d for d in b.delivered(LIST) if d.hdr.get("X-Interlist-Id") == pids[0]][0]
    t.ok(f.orig == m1.replace(b"\r\n", b"\n"), "pipelined message unstuffed, original bytes at b",
         f.orig[:200])

    # ---- half-close: the client shuts its side after QUIT, before our 250 ----
    m3 = crlf(make_msg("lmtp-halfclose@example.org"))
    out = raw_session(port, b"LHLO mta\r\nMAIL FROM:<o@x>\r\nRCPT TO:<l@x>\r\nDATA\r\n" + stuffed(m3) +
                      b".\r\nQUIT\r\n", half_close=True)
    t.eq(codes(out), ["220", "250", "250", "250", "354", "250", "221"],
         "half-closed after QUIT: the message is still answered 250, then 221")
    hid = re.findall(rb"as ([0-9a-f]{64})", out)
    t.ok(len(hid) == 1, "half-close: the 250 names the id", out)
    if hid:
        wait_until(lambda: hid[0].decode() in b.delivered_ids(LIST), 20, "half-closed post at b")
        t.ok(True, "half-close: the post reaches b")

    # ---- refusals ----
    c0 = a.counters()
    big = make_msg("lmtp-big@example.org", body=("z" * 200 + "\n") * (MAX // 200 + 10))
    (code, resp), = lmtp_send(port, big)
    t.eq(code, 552, "an oversized message is 552")
    notmail = b"From: x@example.org\nMessage-ID: <nm@x>\nSubject: no blank line follows\n"
    (code, resp), = lmtp_send(port, notmail)
    t.eq(code, 550, "a message without header/body separation is 550")
    nomsgid = b"From: x@example.org\nSubject: no id\n\nbody\n"
    (code, resp), = lmtp_send(port, nomsgid)
    t.eq(code, 550, "a message without Message-ID is 550")
    c1 = a.counters()
    t.eq(c1["too_large"] - c0["too_large"], 1, "too_large counts the 552")
    t.eq(c1["malformed"] - c0["malformed"], 2, "malformed counts the two 550")
    t.eq(c1["accepted"], c0["accepted"], "nothing accepted by the refusals")
    t.ok(a.log_events("lmtp_refused", list=LIST, reason="too_large"), "lmtp_refused reason=too_large logged")

    # A client that declares the size (Postfix does) is refused at MAIL:
    # the same refusal, counted and logged the same way.
    out = raw_session(port, b"LHLO x\r\nMAIL FROM:<big@example.org> SIZE=%d\r\nQUIT\r\n" % (MAX + 1))
    t.eq(codes(out), ["220", "250", "552", "221"], "MAIL with SIZE= over the limit: 552")
    c2 = a.counters()
    t.eq(c2["too_large"] - c1["too_large"], 1, "too_large counts the 552 at MAIL")
    t.ok(a.log_events("lmtp_refused", list=LIST, reason="too_large", at="mail",
                      bytes=str(MAX + 1), **{"from": "big@example.org"}),
         "lmtp_refused at=mail logged with the declared size and sender")

    # Bad sequences over raw socket.
    out = raw_session(port, b"MAIL FROM:<a@b>\r\nEHLO x\r\nLHLO x\r\nRCPT TO:<a@b>\r\nDATA\r\n"
                      b"MAIL FROM:<a@b>\r\nDATA\r\nFOO\r\n" + b"L" * 1500 + b"\r\nQUIT\r\n")
    t.eq(codes(out), ["220", "503", "500", "250", "503", "503", "250", "503", "500", "500", "221"],
         "bad sequences: 503, HELO/EHLO and unknown 500, long line 500")

    # ---- CHUNKING (BDAT), as Postfix sends it when offered ----
    body1 = crlf(make_msg("lmtp-bdat@example.org", body="in two chunks\n.a dot line\n"))
    cut = len(body1) // 2
    out = raw_session(port, b"LHLO x\r\nMAIL FROM:<o@example.org>\r\nRCPT TO:<incidents@relay.test>\r\n"
                      b"BDAT %d\r\n" % cut + body1[:cut] +
                      b"BDAT %d LAST\r\n" % (len(body1) - cut) + body1[cut:] +
                      # refused (no transaction): its bytes are dropped, not run
                      b"BDAT 6 LAST\r\nQUIT\r\nNOOP\r\nQUIT\r\n")
    t.eq(codes(out), ["220", "250", "250", "250", "250", "250", "503", "250", "221"],
         "BDAT: MAIL, RCPT, chunk, LAST per recipient; a refused chunk's QUIT is not run")
    bid = re.findall(rb"as ([0-9a-f]{64})", out)
    t.ok(len(bid) == 1, "BDAT LAST's 250 names the id", out)
    if bid:
        wait_until(lambda: bid[0].decode() in b.delivered_ids(LIST), 20, "BDAT post at b")
        got = [f for f in b.maildir_files(LIST) if b"lmtp-bdat@example.org" in open(f, "rb").read()]
        t.eq(len(got), 1, "the BDAT post reaches b once")
        if got:
            t.ok(b"\n.a dot line" in open(got[0], "rb").read(),
                 "BDAT: a line starting with a dot is kept as sent (no unstuffing)")

    # ---- a connection dropped mid-DATA stores nothing ----
    st0 = a.status()
    nb = len(b.maildir_files(LIST))
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(b"LHLO x\r\nMAIL FROM:<o@x>\r\nRCPT TO:<l@x>\r\nDATA\r\n")
    read_replies(s, 5)
    s.sendall(crlf(make_msg("lmtp-dropped@example.org"))[:-3])
    time.sleep(0.3)
    s.close()
    wait_until(lambda: a.log_events("lmtp_aborted", list=LIST), 10, "lmtp_aborted in a's log")
    t.ok(True, "a logs lmtp_aborted for the dropped session")
    time.sleep(1)
    st1 = a.status()
    t.eq(st1["counters"], st0["counters"], "dropped mid-DATA: counters unchanged")
    t.eq(a.list_status(LIST, st1)["ingested"], a.list_status(LIST, st0)["ingested"],
         "dropped mid-DATA: nothing ingested")
    t.eq(len(b.maildir_files(LIST)), nb, "dropped mid-DATA: nothing delivered at b")

    # ---- concurrent sessions ----
    N = 12
    results = [None] * N
    # Every session is open and has its recipient before any sends DATA.
    barrier = threading.Barrier(N, timeout=30)

    def worker(i):
        try:
            results[i] = lmtp_send(port, make_msg("lmtp-conc-%d@example.org" % i, body="c%d\n" % i),
                                   before_data=barrier.wait)
        except Exception as e:
            results[i] = e
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(N)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    ok = [r for r in results if isinstance(r, list) and r[0][0] == 250]
    t.eq(len(ok), N, "%d concurrent sessions all answered 250" % N)
    cids = {reply_id(r[0][1]) for r in ok}
    wait_until(lambda: cids <= set(b.delivered_ids(LIST)), 30, "the concurrent posts at b")
    t.ok(True, "%d concurrent posts reach b" % N)

    # ---- the session limit ----
    held = []
    try:
        for i in range(64):
            s = socket.create_connection(("127.0.0.1", port), timeout=15)
            held.append(s)
            r, _ = read_replies(s, 1)
            if not r or not r[0].startswith("220"):
                t.ok(False, "session %d greeted 220" % i, r)
                break
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
        try:
            out = read_all(s)
        finally:
            s.close()
        t.ok(out.startswith(b"421 "), "the 65th session gets 421 and is closed", out)
    finally:
        for s in held:
            s.close()
    # Once they are gone, sessions are served again.
    wait_until(lambda: lmtp_send(port, make_msg("lmtp-after-limit@example.org"))[0][0] == 250, 10,
               "a session after the limit is served")
    t.ok(True, "after the held sessions close, a new session gets 250")

    # ---- the Unix socket ----
    om = make_msg("lmtp-unix@example.org", subject="over the unix socket")
    (code, resp), = lmtp_send(sock_path, om)
    t.eq(code, 250, "a message over lmtp:unix: is 250")
    uid = reply_id(resp)
    wait_until(lambda: uid in b.delivered_ids(OPS), 20, "the unix-socket post in b's ops Maildir")
    t.ok(True, "the unix-socket post reaches b's ops list")

    # ---- our own delivery comes back: a loop ----
    wait_until(b.settled, 20, "b settled")
    files = b.delivered(LIST)
    back = [d for d in files if d.hdr.get("X-Interlist-Id") == mid][0]
    c0 = a.counters()
    nb = len(b.maildir_files(LIST))
    (code, resp), = lmtp_send(port, back.raw)
    t.eq(code, 250, "a message with a known X-Interlist-Id is answered 250")
    t.eq(reply_id(resp), mid, "... naming the id it carries")
    c1 = a.counters()
    t.eq(c1["loops"] - c0["loops"], 1, "counters.loops increments")
    t.eq(c1["accepted"], c0["accepted"], "the loop is not accepted as new")
    time.sleep(1.5)
    t.eq(a.peer("b")["queued"], 0, "nothing queued for b")
    t.eq(len(b.maildir_files(LIST)), nb, "nothing new delivered at b")
    t.ok(a.log_events("lmtp_accepted", list=LIST, kind="loop"), "lmtp_accepted kind=loop logged")

    # ---- a second daemon on the same Unix socket is refused ----
    c3 = fed.relay("c", listen=False, lists=(OPS,), list_conf={OPS: {"ingest": "lmtp:unix:" + sock_path}})
    c3.start()
    try:
        rc = c3.proc.wait(timeout=20)
    except Exception:
        rc = None
    t.ok(rc not in (None, 0), "a second relay on the live LMTP socket exits non-zero (%r)" % rc)
    t.ok(c3.log_events("start_failed"), "... logging start_failed", c3.log_tail(5))
    t.ok(stat.S_ISSOCK(os.stat(sock_path).st_mode), "a's socket file is still there")
    (code, _), = lmtp_send(sock_path, make_msg("lmtp-unix-2@example.org"))
    t.eq(code, 250, "a still serves its Unix socket")

    # ---- a read that fills the session's 64 KiB buffer and ends a message ----
    # The replies wait for the store while the rest of the buffer is parked:
    # the session must stop reading, not fail for want of buffer space.
    full = socket.create_connection(("127.0.0.1", port), timeout=15)
    full.sendall(b"LHLO mta.example.org\r\n")
    read_replies(full, 2)
    head = b"MAIL FROM:<o@x>\r\nRCPT TO:<l@x>\r\n"
    msg = crlf(make_msg("lmtp-full-read@example.org", body="x" * 70 + "\n"))
    n = 65536 - len(head) - len(b"BDAT 00000 LAST\r\n")
    msg = msg + b"y" * (n - len(msg) - 2) + b"\r\n"
    blob = head + b"BDAT %d LAST\r\n" % len(msg) + msg
    t.eq(len(blob), 65536, "the blob is exactly one read buffer")
    full.sendall(blob)
    got, closed = read_replies(full, 3)
    t.ok(not closed and [g[:3] for g in got] == ["250", "250", "250"],
         "a message ending a full 64 KiB read is answered, the session kept", (got, closed))
    full.sendall(b"QUIT\r\n")
    got, _ = read_replies(full, 1)
    t.ok(got and got[0].startswith("221"), "... and the session goes on (QUIT: 221)", got)
    full.close()

    # ---- a reload that changes only the delivery keeps the MTA's sessions ----
    kept = socket.create_connection(("127.0.0.1", port), timeout=15)
    kept.sendall(b"LHLO mta.example.org\r\n")
    read_replies(kept, 2)
    a.list_conf[LIST]["max_deliveries"] = 2
    a.write_config()
    rc, out, err = a.ctl("reload")
    t.eq((rc, err), (0, ""), "a reload that changes the list's delivery only: exit 0")
    kept.sendall(b"MAIL FROM:<o@x>\r\nRCPT TO:<l@x>\r\nDATA\r\n" +
                 crlf(make_msg("lmtp-kept-session@example.org")) + b".\r\n")
    got, closed = read_replies(kept, 4)
    t.ok(not closed and [g[:3] for g in got] == ["250", "250", "354", "250"],
         "a session opened before that reload posts after it", got)
    kept.close()

    # ---- a reload moves the listener; sessions on the old one end ----
    old_sess = socket.create_connection(("127.0.0.1", port), timeout=15)
    read_replies(old_sess, 1)
    old_port, port = port, free_port()
    a.list_conf[LIST]["ingest"] = "lmtp://127.0.0.1:%d" % port
    a.write_config()
    reloads = len(a.log_events("reloaded"))
    os.kill(a.pid, signal.SIGHUP)
    wait_until(lambda: len(a.log_events("reloaded")) > reloads, 15, "a to reload")
    (code, _), = lmtp_send(port, make_msg("lmtp-reloaded@example.org"))
    t.eq(code, 250, "after a reload the new LMTP address serves")
    t.eq(read_all(old_sess), b"", "a session on the old listener is closed by the reload")
    old_sess.close()
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        c.settimeout(2)
        t.ok(c.connect_ex(("127.0.0.1", old_port)) != 0, "the old LMTP port is closed")
    finally:
        c.close()
    (code, _), = lmtp_send(sock_path, make_msg("lmtp-unix-3@example.org"))
    t.eq(code, 250, "the unchanged Unix listener still serves after the reload")

    # A reload whose new LMTP address is taken is refused before anything
    # changes: the old listener serves on, and the rest of that file (a new
    # log level here) is not in force either.
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    a.list_conf[LIST]["ingest"] = "lmtp://127.0.0.1:%d" % taken.getsockname()[1]
    a.log_level = "debug"
    a.write_config()
    log_before = len(a.log())
    refusals = len(a.log_events("reload_refused"))
    rc, out, err = a.ctl("reload")
    t.ok(rc == 78 and re.search(r"interlist\.conf:\d+: ingest: ", err) and "in force" not in err,
         "reload onto a taken LMTP port: exit 78, FILE:LINE: ingest: ...", (rc, err))
    (code, _), = lmtp_send(port, make_msg("lmtp-refused-reload@example.org"))
    t.eq(code, 250, "after the refused reload the old LMTP address still serves")
    t.ok("level=debug" not in a.log()[log_before:] and len(a.log_events("reload_refused")) > refusals,
         "the refused reload's other changes are not in force (no debug lines)")
    a.log_level = "info"
    taken.close()
    port = free_port()
    a.list_conf[LIST]["ingest"] = "lmtp://127.0.0.1:%d" % port
    a.write_config()
    rc, out, err = a.ctl("reload")
    t.eq(rc, 0, "fixed and reloaded: exit 0")
    (code, _), = lmtp_send(port, make_msg("lmtp-after-fix@example.org"))
    t.eq(code, 250, "the list's LMTP serves again")

    # The same port written another way (the wildcard): the early bind
    # fails on our own listener, so it is bound once that one is closed.
    for host in ("0.0.0.0", "127.0.0.1"):
        a.list_conf[LIST]["ingest"] = "lmtp://%s:%d" % (host, port)
        a.write_config()
        rc, out, err = a.ctl("reload")
        t.eq((rc, err), (0, ""), "a reload moving the LMTP listener to %s:same port: exit 0" % host)
        (code, _), = lmtp_send(port, make_msg("lmtp-respelled-%s@example.org" % host))
        t.eq(code, 250, "... and it serves there")

    # A list renamed, its listener kept: the new name's listener can only be
    # bound once the old one is closed, and the reload still goes through.
    a.lists = (LIST, "ops2")
    a.list_conf["ops2"] = a.list_conf.pop(OPS)
    a.write_config()
    rc, out, err = a.ctl("reload")
    t.eq((rc, err), (0, ""), "a reload renaming a list that keeps its LMTP socket: exit 0")
    (code, _), = lmtp_send(sock_path, make_msg("lmtp-renamed@example.org"), rcpts=("ops2@relay.test",))
    t.eq(code, 250, "the renamed list takes posts on the same socket")
    t.ok(a.log_events("lmtp_listening", list="ops2"), "lmtp_listening logged for the new name")

    # ---- shutdown with sessions open (one idle, one mid-DATA) ----
    idle = socket.create_connection(("127.0.0.1", port), timeout=15)
    mid_data = socket.create_connection(("127.0.0.1", port), timeout=15)
    mid_data.sendall(b"LHLO x\r\nMAIL FROM:<o@x>\r\nRCPT TO:<l@x>\r\nDATA\r\nSubject: half\r\n")
    read_replies(mid_data, 5)
    read_replies(idle, 1)
    a.stop()
    t.ok(True, "a stops on SIGTERM with exit 0 while LMTP sessions are open")
    t.ok(not os.path.exists(sock_path), "a removed its LMTP socket file")
    idle.close()
    mid_data.close()
    b.stop()

    for r in (a, b, c3):
        bad = [l for l in r.log().splitlines() if "Sanitizer" in l or "runtime error:" in l]
        t.eq(bad, [], "no sanitizer report in %s's log" % r.id)


if __name__ == "__main__":
    run(main)
