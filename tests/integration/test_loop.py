"""
test_loop: the loop case end to end.

Relays a (listens) and b (dials a). b's list `incidents` has an LMTP ingest
and delivers with exec: to a small "list manager" (a Python script written
here) that does what a mailing list does with a post: it adds Received and
List-Id headers, tags the Subject with "[incidents]", appends a footer, and
distributes the result to its members, among them the relay's member
address, that is b's own LMTP ingest (smtplib.LMTP; exit 0 on 250, 75
otherwise).

1. A post at a reaches b, b delivers it to the list, the list hands it
   straight back to b's ingest: b answers 250 ("loop, not resent"), counts
   it in `loops`, logs event=loop, and does not send it again: b's peer a
   `sent` stays 0, a receives nothing from b.
2. A genuine new post by a member at b (through the same LMTP ingest, no
   X-Interlist headers) IS sent to a: it arrives at a with origin b. As b's
   queue for a is in order, the loop would have reached a before it: a has
   received exactly this one message from b.
3. A list that strips X-Interlist-* headers: the message still comes back
   with its Message-ID, and b takes it as a repeat (duplicates), not a new
   post: still nothing resent to a.
"""
import os
import re
import smtplib

from harness import HEX64, free_port, make_msg, run, start_pair, wait_until

LIST = "incidents"

LIST_MANAGER = r'''
import os, smtplib, sys, time
PORT = %(port)d
DIR = %(dir)r


def note(text):
    with open(os.path.join(DIR, "runs.log"), "a") as f:
        f.write(text.replace("\n", " ") + "\n")


raw = sys.stdin.buffer.read()
n = len([x for x in os.listdir(DIR) if x.startswith("got-")])
with open(os.path.join(DIR, "got-%%d.eml" %% n), "wb") as f:
    f.write(raw)
try:
    with open(os.path.join(DIR, "mode")) as f:
        mode = f.read().strip()
except FileNotFoundError:
    mode = "rewrite"
head, _, body = raw.partition(b"\n\n")
out = [b"Received: from lists.b.example by lists.b.example with list manager; " +
       time.strftime("%%a, %%d %%b %%Y %%H:%%M:%%S +0000", time.gmtime()).encode(),
       b"List-Id: Incidents <incidents.lists.b.example>"]
for line in head.split(b"\n"):
    if mode == "strip" and line.lower().startswith(b"x-interlist-"):
        continue
    if line.lower().startswith(b"subject:"):
        line = b"Subject: [incidents] " + line[8:].lstrip()
    out.append(line)
body += b"\n-- \nincidents mailing list\nhttps://lists.b.example/incidents\n"
msg = (b"\n".join(out) + b"\n\n" + body).replace(b"\n", b"\r\n")
with open(os.path.join(DIR, "sent-%%d.eml" %% n), "wb") as f:
    f.write(msg)
code, resp = 0, b""
try:
    lm = smtplib.LMTP("127.0.0.1", PORT)
    try:
        lm.ehlo("lists.b.example")
        lm.mail("incidents-bounces@lists.b.example")
        code, resp = lm.rcpt("interlist-incidents@b.example")
        if code == 250:
            code, resp = lm.data(msg)
        lm.quit()
    finally:
        lm.close()
except Exception as e:
    code, resp = 0, repr(e).encode()
note("%%d %%s" %% (code, resp.decode(errors="replace")))
sys.exit(0 if code == 250 else 75)
'''


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def lmtp_post(port, msg):
    """One message to b's ingest: (code, text) of the reply to DATA."""
    lm = smtplib.LMTP("127.0.0.1", port)
    try:
        lm.ehlo("mta.b.example")
        lm.mail("member@b.example")
        code, resp = lm.rcpt("interlist-incidents@b.example")
        if code != 250:
            return code, resp.decode(errors="replace")
        code, resp = lm.data(crlf(msg))
        lm.quit()
        return code, resp.decode(errors="replace")
    finally:
        lm.close()


def reply_id(text):
    m = re.search(r"as ([0-9a-f]{64})", text)
    return m.group(1) if m else None


class ListManager:
    def __init__(self, folder, port):
        self.dir = folder
        os.makedirs(folder)
        self.path = os.path.join(folder, "list-manager.py")
        with open(self.path, "w") as f:
            f.write(LIST_MANAGER % {"port": port, "dir": folder})

    def mode(self, m):
        with open(os.path.join(self.dir, "mode.tmp"), "w") as f:
            f.write(m + "\n")
        os.rename(os.path.join(self.dir, "mode.tmp"), os.path.join(self.dir, "mode"))

    def runs(self):
        try:
            with open(os.path.join(self.dir, "runs.log")) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def file(self, kind, n):
        with open(os.path.join(self.dir, "%s-%d.eml" % (kind, n)), "rb") as f:
            return f.read()


def watch_nothing_back(t, a, b, seconds, what):
    """Bounded negative wait: for `seconds`, a receives nothing more from b
    and b sends and queues nothing for a."""
    base = a.peer("b")["received"]
    sent = b.peer("a")["sent"]
    seen = []

    def moved():
        pa, pb = a.peer("b"), b.peer("a")
        if pa["received"] != base or pb["sent"] != sent or pb["queued"]:
            seen.append((pa["received"], pb["sent"], pb["queued"]))
        return False
    try:
        wait_until(moved, seconds, "(bounded negative wait)")
    except Exception:
        pass
    t.eq(seen, [], "%s: watched %.1f s, a received nothing more from b, b sent and queued nothing for a"
         % (what, seconds))


def main(t, fed):
    port = free_port()
    a = fed.relay("a")
    b = fed.relay("b", listen=False)
    lm = ListManager(os.path.join(fed.tmp, "list"), port)
    b.list_conf = {LIST: {"ingest": "lmtp://127.0.0.1:%d" % port,
                          "deliver": "exec:/usr/bin/python3 %s" % lm.path}}
    start_pair(a, b)
    t.ok(b.log_events("lmtp_listening", list=LIST), "b's LMTP ingest for %s is listening" % LIST)

    # ---- 1. a post at a comes back to b through b's list ----
    rc, m1 = a.submit(LIST, make_msg("loop-1@a.example", subject="Outage at registry X",
                                     body="Details follow.\n"))
    t.ok(rc == 0 and HEX64.match(m1), "post at a", (rc, m1))
    wait_until(lambda: len(lm.runs()) >= 1, 30, "b delivering a's post to its list (the exec program)")
    run1 = lm.runs()[0]
    got = lm.file("got", 0)
    t.ok(("X-Interlist-Id: %s\n" % m1).encode() in got and b"Message-ID: <loop-1@a.example>" in got,
         "the list received a's post from b, with its X-Interlist-Id", got[:400])
    sent = lm.file("sent", 0)
    t.ok(b"Subject: [incidents] Outage at registry X\r\n" in sent and b"\r\n-- \r\nincidents mailing list" in sent
         and sent.startswith(b"Received: ") and ("X-Interlist-Id: %s\r\n" % m1).encode() in sent,
         "the list rewrote it (Received, List-Id, [incidents] tag, footer) and sent it back", sent[:600])
    t.ok(run1.startswith("250 ") and "loop, not resent" in run1,
         "b's ingest answered the list 250 (loop, not resent)", run1)
    t.eq(reply_id(run1), m1, "b's 250 names the id the message carries")
    wait_until(lambda: b.counters()["loops"] == 1, 10, "b counting the loop")
    wait_until(lambda: b.list_status(LIST)["pending"] == 0, 10, "b's delivery done")
    st = b.status()
    c = st["counters"]
    t.eq((c["loops"], c["accepted"], c["duplicates"]), (1, 1, 0),
         "b: loops 1, accepted 1 (a's post only), duplicates 0")
    ls = b.list_status(LIST, st)
    t.eq((ls["delivered"], ls["ingested"], ls["failed"]), (1, 0, 0),
         "b's list: delivered 1, ingested 0 (the loop is not a post), failed 0")
    t.ok(b.log_events("loop", list=LIST, msg=m1), "b logs event=loop list=incidents msg=ID")
    t.ok(b.log_events("lmtp_accepted", list=LIST, kind="loop"), "b logs event=lmtp_accepted kind=loop")
    t.eq(b.log_events("posted"), [], "b logged no event=posted: nothing signed as a new post")
    pa = b.peer("a", st)
    t.eq((pa["sent"], pa["queued"]), (0, 0), "b's peer a: sent 0, queued 0")
    watch_nothing_back(t, a, b, 1.5, "after the loop")
    t.eq(a.counters()["accepted"], 1, "a: accepted 1 (its own post only), nothing new from b")
    t.eq(a.delivered_ids(LIST), [], "a's Maildir: nothing came back")
    t.eq(len(lm.runs()), 1, "the list ran once")

    # ---- 1b. a list that rewrote the Message-ID: still our delivery ----
    # The loop check finds a delivery by X-Interlist-Id with X-Interlist-Time
    # (one index search), or by (list, Message-ID) (docs/store.md): this
    # takes the first way only.
    when = re.search(rb"^X-Interlist-Time: (\S+)$", got, re.M)
    t.ok(when, "the delivery carries X-Interlist-Time", got[:400])
    rewritten = make_msg("rewritten-1@list.example", subject="[incidents] Outage at registry X",
                         body="Details follow.\n",
                         extra_headers="X-Interlist-Id: %s\nX-Interlist-Time: %s\n"
                         % (m1, when.group(1).decode() if when else "-"))
    code, resp = lmtp_post(port, rewritten)
    t.ok(code == 250 and "loop, not resent" in resp and reply_id(resp) == m1,
         "the same delivery with a new Message-ID: 250 (loop, not resent) with its id", (code, resp))
    t.eq(b.counters()["loops"], 2, "b: loops 2")
    t.eq(b.log_events("posted"), [], "b logged no event=posted for it")

    # ---- 2. a genuine post by a member at b goes to a ----
    member = make_msg("member-1@b.example", subject="[incidents] Seen here too",
                      body="We see the same.\n-- \nincidents mailing list\n")
    code, resp = lmtp_post(port, member)
    m2 = reply_id(resp)
    t.ok(code == 250 and m2 and m2 != m1 and "loop" not in resp and "repeat" not in resp,
         "a member's post at b's ingest: 250, a new id", (code, resp))
    wait_until(lambda: m2 in a.delivered_ids(LIST), 20, "the member's post at a")
    f = [d for d in a.delivered(LIST) if d.hdr.get("X-Interlist-Id") == m2][0]
    t.eq((f.hdr.get("X-Interlist-Origin"), f.hdr.get("X-Interlist-Path")), ("b", "b!a"),
         "it reaches a with origin b, path b!a")
    t.eq(f.orig, member, "a holds the member's original bytes")
    t.ok(b.log_events("posted", list=LIST, msg=m2), "b logs event=posted for it")
    wait_until(lambda: b.peer("a")["queued"] == 0, 10, "b's queue for a empty")
    t.eq(a.delivered_ids(LIST), [m2], "a's Maildir holds only the member's post (the loop never came)")
    t.eq((a.peer("b")["received"], b.peer("a")["sent"]), (1, 1),
         "exactly one message went from b to a (a's received 1, b's sent 1)")
    t.eq(b.list_status(LIST)["ingested"], 1, "b's list: ingested 1")
    wait_until(lambda: b.list_status(LIST)["pending"] == 0, 10, "b settled")
    t.eq(len(lm.runs()), 1, "b did not deliver its own member's post back to its list")

    # ---- 3. a list that strips X-Interlist-* headers ----
    lm.mode("strip")
    c0 = b.counters()
    rc, m3 = a.submit(LIST, make_msg("loop-2@a.example", subject="Second report"))
    t.eq(rc, 0, "second post at a")
    wait_until(lambda: len(lm.runs()) >= 2, 30, "the list's second run")
    run2 = lm.runs()[1]
    sent = lm.file("sent", 1)
    t.ok(b"X-Interlist-" not in sent and b"Message-ID: <loop-2@a.example>" in sent,
         "the stripping list sent it back without X-Interlist headers", sent[:500])
    t.ok(run2.startswith("250 ") and reply_id(run2) == m3 and "repeat" in run2,
         "b answers 250 (repeat), naming the stored message's id", run2)
    wait_until(lambda: b.counters()["duplicates"] == c0["duplicates"] + 1, 10, "b counting the repeat")
    c1 = b.counters()
    t.eq((c1["loops"], c1["accepted"]), (c0["loops"], c0["accepted"] + 1),
         "b: loops unchanged, accepted +1 (a's second post only)")
    t.eq(b.peer("a")["sent"], 1, "b's peer a: still only the member's post sent")
    watch_nothing_back(t, a, b, 1.5, "after the repeat")
    t.eq(a.delivered_ids(LIST), [m2], "a's Maildir: still only the member's post")

    for r in (b, a):
        r.stop()
        t.ok(True, "%s stops with exit 0" % r.id)
    errs = [l for r in (a, b) for l in r.log().splitlines() if " level=error " in l]
    t.eq(errs, [], "no error logged")


if __name__ == "__main__":
    run(main)
