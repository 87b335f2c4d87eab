"""
test_deliver: the smtp: and exec: delivery backends, parking, and the
`failed` / `retry` commands, with real processes.

Relay a takes the posts (interlistctl submit); relay b dials a, receives
them and delivers each list its own way:

    incidents     maildir (the peer traffic that must never stall)
    smtp          smtp://127.0.0.1:SINK (smtp_tls default: starttls), rcpt
    smtp-plain    the same with smtp_tls = off
    smtp-verify   the same with smtp_tls = required (the sink's certificate
                  is self-signed: a temporary failure)
    exec          exec:FAKE-SENDMAIL -i -- list@example.org, exec_timeout 1
    exec-missing  exec: a program that does not exist (parked)

The SMTP server is smtp_sink.py (aiosmtpd) in a child process, answering
250, 451 or 550 (at the end of DATA or at RCPT) or slowly, as its mode file
says. The fake sendmail is a shell script written here: it saves stdin and
its arguments and exits with the code in its own mode file, or sleeps in a
grandchild past exec_timeout.
"""
import json
import os
import re
import subprocess
import time

import harness
from harness import HEX64, make_msg, run, start_pair, wait_until
from smtp_sink import SmtpSink

LISTS = ("incidents", "smtp", "smtp-plain", "smtp-verify", "exec", "exec-missing")
RELAY_HEADERS = ("X-Interlist-Id", "X-Interlist-Time", "X-Interlist-Origin", "X-Interlist-Path",
                 "X-Interlist-TLP", "X-Interlist-List")
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

FAKE_SENDMAIL = r"""#!/bin/sh
# fake sendmail for test_deliver: stdin and arguments to files, exit code
# from the mode file ("sleep": hang in a grandchild past exec_timeout).
d='%(dir)s'
mode=$(cat "$d/mode" 2>/dev/null || echo 0)
echo "$mode" >> "$d/attempts.log"
if [ "$mode" = sleep ]; then
	sleep 30 &
	echo $! > "$d/sleeper.pid"
	wait
	exit 0
fi
f="$d/tmp/$$.$(date +%%s%%N)"
cat > "$f.eml"
printf '%%s\n' "$*" > "$f.args"
if [ "$mode" = 0 ]; then
	mv "$f.args" "$d/out/"
	mv "$f.eml" "$d/out/"
else
	echo "fake-sendmail: mode $mode" >&2
	echo "second line of stderr" >&2
fi
exit "$mode"
"""


class FakeSendmail:
    def __init__(self, folder):
        self.dir = folder
        for sub in ("tmp", "out"):
            os.makedirs(os.path.join(folder, sub))
        self.path = os.path.join(folder, "fake-sendmail.sh")
        with open(self.path, "w") as f:
            f.write(FAKE_SENDMAIL % {"dir": folder})
        os.chmod(self.path, 0o755)
        self.mode("0")

    def mode(self, text):
        tmp = os.path.join(self.dir, "mode.tmp")
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.rename(tmp, os.path.join(self.dir, "mode"))

    def delivered(self):
        """[(stdin bytes, argument line)] of the runs that exited 0."""
        out = []
        d = os.path.join(self.dir, "out")
        for name in sorted(os.listdir(d)):
            if name.endswith(".eml"):
                with open(os.path.join(d, name), "rb") as f:
                    raw = f.read()
                with open(os.path.join(d, name[:-4] + ".args")) as f:
                    args = f.read().strip()
                out.append((raw, args))
        return out

    def ids(self):
        return [hid(raw) for raw, _ in self.delivered()]

    def attempts(self):
        try:
            with open(os.path.join(self.dir, "attempts.log")) as f:
                return f.read().split()
        except FileNotFoundError:
            return []


def hid(raw):
    m = re.search(rb"^X-Interlist-Id: ([0-9a-f]{64})\r?$", raw, re.M)
    return m.group(1).decode() if m else None


def relay_headers(raw, eol):
    """The leading X-Interlist-* lines as [(name, value)], and the rest."""
    out, pos = [], 0
    while raw.startswith(b"X-Interlist-", pos):
        end = raw.index(eol, pos)
        name, _, value = raw[pos:end].decode().partition(": ")
        out.append((name, value))
        pos = end + len(eol)
    return out, raw[pos:]


def make_cert(folder):
    """A self-signed certificate for the sink's STARTTLS."""
    cert, key = os.path.join(folder, "sink.crt"), os.path.join(folder, "sink.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=sink.test",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def as_nobody(relay, args):
    """interlistctl ARGS on relay's socket as user nobody: (exit, stdout), or
    None when that cannot be arranged (not root, binary out of reach). The
    folders on the way and the socket are opened up for the call only."""
    if os.geteuid() != 0:
        return None
    opened = []
    try:
        path = relay.sock
        d = os.path.dirname(path)
        while d not in ("/", "/tmp"):
            opened.append((d, os.stat(d).st_mode & 0o7777))
            d = os.path.dirname(d)
        opened.append((path, os.stat(path).st_mode & 0o7777))
        for p, mode in opened:
            os.chmod(p, mode | (0o666 if p == path else 0o711))
        r = subprocess.run([harness.INTERLISTCTL, "-s", path] + args, user=65534, group=65534,
                           extra_groups=[], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        for p, mode in opened:
            os.chmod(p, mode)
    if r.returncode in (126, 127) or b"ermission denied" in r.stderr and r.returncode != 77:
        return None     # could not run the binary or reach the socket
    return r.returncode, r.stdout.decode()


def curl_enabled():
    """Was interlistd built with libcurl (il_build.h of the build tree)?"""
    root = os.environ.get("IL_BUILD_ROOT")
    try:
        with open(os.path.join(root, "il_build.h")) as f:
            return "#define HAVE_LIBCURL 1" in f.read()
    except (OSError, TypeError):
        return True


def main(t, fed):
    if not curl_enabled():
        t.ok(True, "# SKIP interlistd built without libcurl")
        return
    cert, key = make_cert(fed.tmp)
    sink = SmtpSink(os.path.join(fed.tmp, "sink"), tls=(cert, key)).start()
    harness._PROCS.append(sink.proc)    # killed at exit with the relays
    fake = FakeSendmail(os.path.join(fed.tmp, "exec"))
    smtp_url = "smtp://127.0.0.1:%d" % sink.port
    b_conf = {
        "smtp": {"deliver": smtp_url, "rcpt": "secir@lists.example.org",
                 "mail_from": "relay-b@example.org"},
        "smtp-plain": {"deliver": smtp_url, "rcpt": "plain@lists.example.org", "smtp_tls": "off"},
        "smtp-verify": {"deliver": smtp_url, "rcpt": "verify@lists.example.org",
                        "smtp_tls": "required"},
        "exec": {"deliver": "exec:%s -i -- list@example.org" % fake.path, "exec_timeout": "1"},
        "exec-missing": {"deliver": "exec:%s -i" % os.path.join(fed.tmp, "no-such-sendmail")},
    }
    a = fed.relay("a", lists=LISTS)
    b = fed.relay("b", listen=False, lists=LISTS, list_conf=b_conf)
    start_pair(a, b)

    posts = {}

    def post(lst, tag):
        msg = make_msg("%s-%s@example.org" % (tag, lst), subject="%s on %s" % (tag, lst),
                       body="Body of %s.\n.a line with a leading dot\nlast line\n" % tag)
        rc, out = a.submit(lst, msg)
        if rc != 0 or not HEX64.match(out):
            raise harness.Failure("submit %s to %s: exit %d, %r" % (tag, lst, rc, out))
        posts[out] = msg
        return out

    def ls(lst):
        return b.list_status(lst)

    def settled(lst):
        return ls(lst)["pending"] == 0

    def once(get_ids, mid, what):
        """mid arrives, and then it is there exactly once. A miss is a
        failed check, not the end of the test: later posts to the list wake
        its delivery, so the cases after it still say something."""
        try:
            wait_until(lambda: mid in get_ids(), 30, what)
        except harness.Failure as e:
            t.ok(False, what, str(e))
            return False
        time.sleep(0.5)     # a second copy would come right behind the first
        return t.eq(get_ids().count(mid), 1, what + ", exactly once")

    def deferred(lst, mid):
        return b.log_events("deferred", list=lst, msg=mid)

    # ---- smtp: CRLF, relay headers, envelope, STARTTLS when offered ----
    m1 = post("smtp", "basic")
    wait_until(lambda: m1 in sink.ids(), 20, "the post on smtp at the sink")
    raw, meta = [x for x in sink.messages() if hid(x[0]) == m1][0]
    t.ok(b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b""),
         "smtp: every line ends in CRLF on the wire", raw[:200])
    hdrs, rest = relay_headers(raw, b"\r\n")
    when = dict(hdrs).get("X-Interlist-Time", "")
    t.ok(RFC3339_MS.match(when), "smtp: X-Interlist-Time is the origin time, RFC 3339 in ms", when)
    t.eq(hdrs, [("X-Interlist-Id", m1), ("X-Interlist-Time", when), ("X-Interlist-Origin", "a"),
                ("X-Interlist-Path", "a!b"), ("X-Interlist-TLP", "AMBER"), ("X-Interlist-List", "smtp")],
         "smtp: the X-Interlist headers come first")
    t.eq(rest, posts[m1].replace(b"\n", b"\r\n"), "smtp: then the original message (CRLF), dot line kept")
    t.eq((meta["mail_from"], meta["rcpt_tos"]), ("relay-b@example.org", ["secir@lists.example.org"]),
         "smtp: envelope MAIL FROM and RCPT TO from the list config")
    t.ok(meta["tls"] is True, "smtp_tls default (starttls): STARTTLS used when the server offers it")
    wait_until(lambda: settled("smtp"), 10, "smtp list settled")
    st = ls("smtp")
    t.eq((st["delivered"], st["pending"], st["failed"]), (1, 0, 0), "smtp: status delivered 1")

    # ---- smtp_tls = off against the same server ----
    m2 = post("smtp-plain", "plain")
    wait_until(lambda: m2 in sink.ids(), 20, "the post on smtp-plain at the sink")
    meta = [x for x in sink.messages() if hid(x[0]) == m2][0][1]
    t.ok(meta["tls"] is False, "smtp_tls = off: plain SMTP although STARTTLS is offered")
    t.ok(meta["mail_from"].startswith("interlist@"), "mail_from defaults to interlist@HOST",
         meta["mail_from"])

    # ---- smtp_tls = required: the self-signed certificate fails verification ----
    m3 = post("smtp-verify", "verify")
    wait_until(lambda: deferred("smtp-verify", m3), 20, "smtp-verify deferred")
    t.ok("certificate" in deferred("smtp-verify", m3)[0].lower() or "ssl" in deferred("smtp-verify", m3)[0].lower(),
         "smtp_tls = required: an unverifiable certificate is a temporary failure", deferred("smtp-verify", m3))
    st = ls("smtp-verify")
    t.eq((st["pending"], st["failed"]), (1, 0), "smtp-verify: kept pending, not parked")
    t.ok(m3 not in sink.ids(), "smtp-verify: nothing handed over without verification")

    # ---- 451: deferred, then delivered once when the server accepts ----
    sink.mode("451")
    m4 = post("smtp", "defer")
    wait_until(lambda: ["451", m4] in sink.attempts(), 20, "the sink answering 451")
    wait_until(lambda: deferred("smtp", m4), 10, "b logging the deferral")
    t.ok("451" in deferred("smtp", m4)[0], "deferral logs the server's 451 reply", deferred("smtp", m4)[0])
    t.ok(ls("smtp")["pending"] >= 1, "451: status pending > 0")
    t.ok(m4 not in sink.ids(), "451: not delivered")
    sink.mode("250")
    once(sink.ids, m4, "after 451 then 250 the post arrives")
    wait_until(lambda: settled("smtp"), 10, "smtp settled")

    # ---- deferred across a restart of b ----
    sink.mode("451")
    m5 = post("smtp", "restart")
    wait_until(lambda: deferred("smtp", m5), 20, "deferral before the restart")
    b.stop()
    t.ok(True, "b stops with exit 0 while a delivery is deferred")
    sink.mode("250")
    b.restart()
    if not once(sink.ids, m5, "a delivery deferred before a restart arrives after it"):
        # Nothing woke the list after the restart: a new post does, so that
        # the cases below still run on a clean list.
        post("smtp", "kick")
        wait_until(lambda: m5 in sink.ids(), 30, "the deferred post after a new post's kick")
    wait_until(lambda: settled("smtp"), 10, "smtp settled after the restart")

    # ---- 550: parked, listed by `failed`, retried by `retry` ----
    sink.mode("550")
    m6 = post("smtp", "park")
    wait_until(lambda: ls("smtp")["failed"] == 1, 20, "the 550 parking the delivery")
    t.eq(ls("smtp")["pending"], 0, "550: nothing pending")
    t.ok(m6 not in sink.ids(), "550: not delivered")
    rc, out, err = b.ctl("failed", "smtp")
    t.eq(rc, 0, "interlistctl failed smtp exits 0")
    try:
        ans = json.loads(out)
    except ValueError:
        ans = {}
    fl = ans.get("failed") or [{}]
    t.ok((ans.get("list"), ans.get("total"), len(ans.get("failed", [])), fl[0].get("id"))
         == ("smtp", 1, 1, m6), "failed lists the parked delivery's id", out)
    t.ok("550" in fl[0].get("error", "") and fl[0].get("attempts", 0) >= 1,
         "failed shows the 550 reply and the attempts", fl[0])
    t.eq((fl[0].get("origin"), fl[0].get("message_id")), ("a", "<park-smtp@example.org>"),
         "failed shows origin and Message-ID")
    t.ok(isinstance(fl[0].get("received"), int) and abs(fl[0]["received"] - time.time()) < 300,
         "failed shows when the message was received", fl[0])
    rc, out, err = b.ctl("failed", "no-such-list")
    t.eq(rc, 65, "failed on an unknown list exits 65")
    rc, out, err = b.ctl("retry", "smtp", "not-an-id")
    t.eq(rc, 64, "retry with a malformed id exits 64")
    rc, out, err = b.ctl("retry", "smtp", "0" * 64)
    t.eq(rc, 65, "retry of an id that is not parked exits 65")
    t.eq(ls("smtp")["failed"], 1, "still parked after the refused retries")
    # retry changes state: root or the daemon's user only; failed is read-only.
    unpriv = as_nobody(b, ["retry", "smtp", m6])
    if unpriv is None:
        t.ok(True, "# SKIP unprivileged caller: cannot run interlistctl as nobody here")
    else:
        t.eq(unpriv[0], 77, "retry by an unprivileged caller exits 77 (permission denied)")
        t.eq(as_nobody(b, ["failed", "smtp"])[0], 0, "failed by an unprivileged caller is allowed")
        t.eq(ls("smtp")["failed"], 1, "still parked after the unprivileged retry")
    sink.mode("250")
    rc, out, err = b.ctl("retry", "smtp", m6)
    t.eq((rc, out.strip()), (0, '{"list":"smtp","retried":1}'), "interlistctl retry smtp ID (as root)")
    once(sink.ids, m6, "the retried delivery arrives")
    wait_until(lambda: ls("smtp")["failed"] == 0 and settled("smtp"), 10, "nothing parked after retry")

    # 550 at RCPT, then `retry LIST` (all).
    sink.mode("550 at=rcpt")
    m7 = post("smtp", "rcpt550")
    wait_until(lambda: ls("smtp")["failed"] == 1, 20, "a 550 at RCPT parking the delivery")
    sink.mode("250")
    rc, out, err = b.ctl("retry", "smtp")
    t.eq((rc, out.strip()), (0, '{"list":"smtp","retried":1}'), "interlistctl retry smtp (all)")
    once(sink.ids, m7, "the delivery refused at RCPT arrives after retry")

    # ---- a slow server does not stall the peer traffic ----
    sink.mode("250 delay=3")
    m8 = post("smtp", "slow")
    wait_until(lambda: ["begin", m8] in sink.attempts(), 20, "the slow SMTP delivery under way")
    t0 = time.monotonic()
    m9 = post("incidents", "fast")
    wait_until(lambda: m9 in b.delivered_ids("incidents"), 10, "the maildir post")
    took = time.monotonic() - t0
    slow_done = m8 in sink.ids()
    t.ok(not slow_done and took < 2.5,
         "maildir delivery on the same relay done in %.2f s while the SMTP delivery waits" % took)
    once(sink.ids, m8, "the slow SMTP delivery completes")
    # Deliveries to one list run side by side (max_deliveries, default 4).
    sink.mode("250 delay=2")
    t0 = time.monotonic()
    ms = [post("smtp", "para%d" % i) for i in range(3)]
    wait_until(lambda: all(m in sink.ids() for m in ms), 30, "three slow deliveries")
    took = time.monotonic() - t0
    t.ok(took < 5.5, "three 2 s SMTP deliveries run concurrently (%.2f s)" % took)
    sink.mode("250")

    # ---- exec: exit 0 ----
    e1 = post("exec", "exec0")
    wait_until(lambda: e1 in fake.ids(), 20, "the exec delivery")
    raw, args = [x for x in fake.delivered() if hid(x[0]) == e1][0]
    t.eq(args, "-i -- list@example.org", "exec: arguments as configured, no shell")
    hdrs, rest = relay_headers(raw, b"\n")
    t.eq([h for h, _ in hdrs], list(RELAY_HEADERS), "exec: X-Interlist headers first")
    t.ok(rest == posts[e1] and b"\r" not in raw, "exec: then the message, LF line ends", raw[:200])
    wait_until(lambda: settled("exec"), 10, "exec settled")
    t.eq(ls("exec")["delivered"], 1, "exec: status delivered 1")

    # exit 75: deferred, then delivered.
    fake.mode("75")
    e2 = post("exec", "exec75")
    wait_until(lambda: deferred("exec", e2), 20, "exit 75 deferring")
    line = deferred("exec", e2)[0]
    t.ok("exit 75" in line and "fake-sendmail: mode 75 second line" in line,
         "exit 75: deferred, stderr in the error", line)
    t.ok(ls("exec")["pending"] >= 1, "exit 75: pending > 0")
    fake.mode("0")
    once(fake.ids, e2, "after exit 75 the post is delivered")

    # exit 1: parked, retried.
    fake.mode("1")
    e3 = post("exec", "exec1")
    wait_until(lambda: ls("exec")["failed"] == 1, 20, "exit 1 parking")
    rc, out, err = b.ctl("failed", "exec")
    fl = json.loads(out)["failed"] if rc == 0 else [{}]
    t.ok(rc == 0 and fl[0].get("id") == e3 and "exit 1" in fl[0].get("error", "")
         and "fake-sendmail: mode 1" in fl[0].get("error", ""),
         "exit 1: parked, failed shows the exit and stderr", out)
    fake.mode("0")
    rc, out, err = b.ctl("retry", "exec", e3)
    t.eq(rc, 0, "retry exec ID")
    once(fake.ids, e3, "the parked exec delivery arrives after retry")

    # exec_timeout: the program and its grandchild are killed, retried.
    fake.mode("sleep")
    e4 = post("exec", "exec-sleep")
    wait_until(lambda: deferred("exec", e4), 20, "exec_timeout deferring")
    line = deferred("exec", e4)[0]
    t.ok("exec_timeout" in line, "exec_timeout: killed and deferred", line)
    t.ok(b.log_events("exec_killed", list="exec"), "exec_killed logged")
    with open(os.path.join(fake.dir, "sleeper.pid")) as f:
        sleeper = int(f.read())

    def gone(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie waiting for its reaper counts as gone.
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().split(")")[-1].split()[0] == "Z"
        except FileNotFoundError:
            return True
    wait_until(lambda: gone(sleeper), 5, "the grandchild killed with its process group")
    t.ok(True, "exec_timeout kills the whole process group")
    fake.mode("0")
    once(fake.ids, e4, "after the timeout the post is delivered")

    # A program that does not exist: parked.
    e5 = post("exec-missing", "missing")
    wait_until(lambda: ls("exec-missing")["failed"] == 1, 20, "a missing program parking")
    rc, out, err = b.ctl("failed", "exec-missing")
    t.ok(rc == 0 and "no such file" in out.lower() and e5 in out, "missing program: parked with ENOENT", out)

    # ---- the end: everything accounted for, clean exits ----
    wait_until(lambda: all(settled(l) for l in LISTS if l != "smtp-verify"), 20, "all settled")
    st = b.status()
    t.eq({l["name"]: l["failed"] for l in st["lists"]},
         {"incidents": 0, "smtp": 0, "smtp-plain": 0, "smtp-verify": 0, "exec": 0, "exec-missing": 1},
         "b: parked counts per list")
    ids = sink.ids()
    t.eq(sorted(ids), sorted(set(ids)), "no message reached the SMTP server twice")
    t.eq(sorted(fake.ids()), sorted(set(fake.ids())), "no message reached the exec program twice")
    t.eq([l for l in b.log().splitlines() if "level=error" in l], [], "b logged no errors")
    for r in (b, a):
        r.stop()
        t.ok(True, "%s stops on SIGTERM with exit 0" % r.id)
    sink.stop()


if __name__ == "__main__":
    run(main)
