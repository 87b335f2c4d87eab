"""
harness.py — run real interlistd relays on 127.0.0.1 for the integration
tests (Debian's /usr/bin/python3, standard library only).

    from harness import Federation, Tap, wait_until, make_msg

    def main(t, fed):
        a = fed.relay("a")
        b = fed.relay("b", listen=False)
        b.add_peer(a, dial=True)
        a.add_peer(b)
        a.start(); a.wait_ready()
        ...
        t.ok(cond, "what was checked")

    run(main)

Every relay gets its own folder under one temporary folder: real keys from
`interlistctl init`, a config file written at start(), a data folder, a log
file (the daemon's stderr) and one Maildir per list. Every process started
is recorded and killed at the end whatever happens (try/finally, atexit and
SIGTERM/SIGINT handlers); on failure the relays' log tails are printed.

Environment: INTERLISTD, INTERLISTCTL, ILFORGE (paths of the binaries; set by
meson, or by hand). IL_KEEP_TMP=1 keeps the temporary folder.
"""
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

INTERLISTD = os.environ.get("INTERLISTD", "interlistd")
INTERLISTCTL = os.environ.get("INTERLISTCTL", "interlistctl")
ILFORGE = os.environ.get("ILFORGE", "ilforge")

HEX64 = re.compile(r"^[0-9a-f]{64}$")

# Every interlistd we started, alive or not: killed at exit whatever happens.
_PROCS = []


def _kill_all():
    for p in _PROCS:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for p in _PROCS:
        try:
            p.wait(timeout=10)
        except Exception:
            pass


atexit.register(_kill_all)


def _on_signal(signum, frame):
    # meson's timeout sends SIGTERM: unwind so that finally blocks run.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


class Failure(Exception):
    """A check that cannot go on (timeout, unexpected exit)."""


def free_port():
    """A TCP port free on 127.0.0.1 right now (bind port 0, read, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(pred, timeout, what, interval=0.05):
    """Poll pred() every interval seconds until it returns something true,
    and return that. OSError/ValueError/KeyError from pred (a daemon not yet
    answering, a half-written file) count as "not yet". Raises Failure after
    timeout seconds, naming what and the last value or error seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = pred()
            if v:
                return v
            last = v
        except (OSError, ValueError, KeyError) as e:
            last = "%s: %s" % (type(e).__name__, e)
        if time.monotonic() >= deadline:
            raise Failure("timed out after %.1f s waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)


def preload_env(shim, **env):
    """interlistd's environment with a test shim (a path) preloaded, and
    env added. An ASan build's runtime is then not first in the preload
    list, which ASan would otherwise refuse."""
    asan = ":".join(x for x in (os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0") if x)
    return dict(env, LD_PRELOAD=shim, ASAN_OPTIONS=asan)


def start_pair(a, b, timeout=20):
    """Peer a (listening) and b (dialling a), start both and wait until
    their session is up on both sides."""
    a.add_peer(b)
    b.add_peer(a, dial=True)
    for r in (a, b):
        r.start()
        r.wait_ready()
    wait_until(lambda: a.peer(b.id)["connected"] and b.peer(a.id)["connected"], timeout,
               "%s-%s session up" % (a.id, b.id))


def make_msg(msgid, subject="test", body="body\n", extra_headers=""):
    """An RFC 5322 message with LF line ends (bytes); msgid without <>."""
    return ("From: sender@example.org\nTo: list@example.org\n"
            "Message-ID: <%s>\nSubject: %s\n%s\n%s" % (msgid, subject, extra_headers, body)).encode()


def message_id_of(raw):
    m = re.search(rb"^Message-ID:\s*<([^>]*)>", raw, re.M | re.I)
    return m.group(1).decode() if m else None


class Delivered:
    """A file in a Maildir written by the relay: its X-Interlist-* header
    lines (in order, as a dict and a list) and the original bytes after them."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.raw = f.read()
        self.relay_headers = []
        pos = 0
        while self.raw.startswith(b"X-Interlist-", pos):
            end = self.raw.index(b"\n", pos)
            name, _, value = self.raw[pos:end].decode().partition(": ")
            self.relay_headers.append((name, value))
            pos = end + 1
        self.hdr = dict(self.relay_headers)
        self.orig = self.raw[pos:]
        self.message_id = message_id_of(self.orig)

    def __repr__(self):
        return "Delivered(%s, %s)" % (os.path.basename(self.path), self.hdr.get("X-Interlist-Id"))


class Relay:
    """One interlistd: keys, config, process, status and Maildirs."""

    def __init__(self, rid, tmpdir, listen=True, lists=("incidents",), relay_conf=None,
                 list_conf=None, log_level="info"):
        self.id = rid
        self.dir = os.path.join(tmpdir, rid)
        self.keys = os.path.join(self.dir, "keys")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "status.sock")
        self.conf_path = os.path.join(self.dir, "interlist.conf")
        self.extra_env = {}             # added to interlistd's environment
        self.log_path = os.path.join(self.dir, "interlistd.log")
        self.port = free_port() if listen else None
        self.lists = list(lists)
        self.relay_conf = dict(relay_conf or {})
        self.list_conf = {k: dict(v) for k, v in (list_conf or {}).items()}
        self.log_level = log_level
        self.peers = []          # [(relay or id, options dict)]
        self.origins = []        # [(id, sign_pub path)]
        self.proc = None
        self.exits = []          # exit statuses of earlier runs
        os.makedirs(self.dir)
        r = subprocess.run([INTERLISTCTL, "init", "--id", rid, "--dir", self.keys],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise Failure("interlistctl init %s: exit %d: %s" % (rid, r.returncode, r.stderr.decode()))

    # ---- key files (other relays point at these) ----
    @property
    def tls_cert(self):
        return os.path.join(self.keys, self.id + ".tls.crt")

    @property
    def tls_key(self):
        return os.path.join(self.keys, self.id + ".tls.key")

    @property
    def sign_key(self):
        return os.path.join(self.keys, self.id + ".sign.key")

    @property
    def sign_pub(self):
        return os.path.join(self.keys, self.id + ".sign.pub")

    @property
    def url(self):
        if self.port is None:
            raise Failure("relay %s does not listen" % self.id)
        return "tls+tcp://127.0.0.1:%d" % self.port

    def maildir(self, lst):
        return os.path.join(self.dir, "maildir", lst)

    # ---- configuration ----
    def add_peer(self, other, dial=False, url=None, lists=None, max_tlp=None, **extra):
        """Peer with another Relay: pin its certificate and signing key.
        dial=True dials other's listen address (or url)."""
        opts = dict(extra)
        if dial or url:
            opts["url"] = url or other.url
        if lists:
            opts["lists"] = ", ".join(lists)
        if max_tlp:
            opts["max_tlp"] = max_tlp
        self.peers.append((other, opts))

    def add_origin(self, other):
        self.origins.append((other.id, other.sign_pub))

    def config_text(self):
        out = ["[relay]", "id = " + self.id]
        if self.port is not None:
            out.append("listen = tls+tcp://127.0.0.1:%d" % self.port)
        out += ["tls_cert = " + self.tls_cert, "tls_key = " + self.tls_key,
                "sign_key = " + self.sign_key, "data_dir = " + self.data,
                "status_socket = " + self.sock, "log_level = " + self.log_level]
        for k, v in self.relay_conf.items():
            out.append("%s = %s" % (k, v))
        for other, opts in self.peers:
            out += ["", "[peer %s]" % other.id, "tls_cert = " + other.tls_cert,
                    "sign_pub = " + other.sign_pub]
            for k, v in opts.items():
                out.append("%s = %s" % (k, v))
        for oid, pub in self.origins:
            out += ["", "[origin %s]" % oid, "sign_pub = " + pub]
        for lst in self.lists:
            out += ["", "[list %s]" % lst]
            lc = self.list_conf.get(lst, {})
            if "deliver" not in lc:
                out.append("deliver = maildir:" + self.maildir(lst))
            for k, v in lc.items():
                if v is not None:
                    out.append("%s = %s" % (k, v))
        return "\n".join(out) + "\n"

    def write_config(self):
        with open(self.conf_path, "w") as f:
            f.write(self.config_text())

    # ---- process ----
    def start(self):
        if self.running():
            raise Failure("relay %s already running" % self.id)
        self.write_config()
        log = open(self.log_path, "ab")
        log.write(b"# ---- interlistd start %s ----\n" % time.strftime("%H:%M:%S").encode())
        log.flush()
        try:
            env = dict(os.environ, **self.extra_env) if self.extra_env else None
            self.proc = subprocess.Popen([INTERLISTD, "-c", self.conf_path], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, cwd=self.dir, env=env)
        finally:
            log.close()
        _PROCS.append(self.proc)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def wait_ready(self, timeout=15):
        """Poll the status socket until it answers. The daemon serves it
        only once its listener and dialers are set up."""
        def ready():
            if self.proc.poll() is not None:
                raise Failure("interlistd %s exited with %d before answering status"
                              % (self.id, self.proc.returncode))
            return self.status()
        return wait_until(ready, timeout, "relay %s to answer status" % self.id, interval=0.02)

    def stop(self, timeout=20, expect=0):
        """SIGTERM and wait; the exit status must be expect (0)."""
        if not self.running():
            raise Failure("relay %s is not running (exit %r)" % (self.id, self.proc and self.proc.returncode))
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Failure("relay %s did not exit within %d s of SIGTERM" % (self.id, timeout))
        self.exits.append(rc)
        if expect is not None and rc != expect:
            raise Failure("relay %s exited with %d after SIGTERM, expected %d" % (self.id, rc, expect))
        return rc

    def kill9(self):
        if not self.running():
            raise Failure("relay %s is not running" % self.id)
        os.kill(self.proc.pid, signal.SIGKILL)
        rc = self.proc.wait(timeout=10)
        self.exits.append(rc)
        return rc

    def restart(self, timeout=15):
        self.start()
        return self.wait_ready(timeout)

    # ---- status socket ----
    def command(self, line, timeout=10):
        """One request line on the status socket; the whole answer (str)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.sock)
            s.sendall(line.encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        finally:
            s.close()
        ans = b"".join(chunks)
        if not ans:
            raise ConnectionError("empty answer from %s" % self.sock)
        return ans.decode()

    def status(self):
        return json.loads(self.command("status"))

    def peer(self, pid, st=None):
        st = st or self.status()
        for p in st["peers"]:
            if p["id"] == pid:
                return p
        raise KeyError("relay %s has no peer %s" % (self.id, pid))

    def list_status(self, name, st=None):
        st = st or self.status()
        for l in st["lists"]:
            if l["name"] == name:
                return l
        raise KeyError("relay %s has no list %s" % (self.id, name))

    def counters(self):
        return self.status()["counters"]

    def settled(self):
        """Nothing queued for any peer and nothing pending delivery."""
        st = self.status()
        return all(p["queued"] == 0 for p in st["peers"]) and all(l["pending"] == 0 for l in st["lists"])

    # ---- CLI ----
    def ctl(self, *args, input=None, timeout=30):
        r = subprocess.run([INTERLISTCTL, "-s", self.sock] + list(args), input=input,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def submit(self, lst, data, timeout=30):
        """interlistctl submit: (exit status, stdout stripped)."""
        rc, out, err = self.ctl("submit", lst, input=data, timeout=timeout)
        self.last_submit_stderr = err
        return rc, out.strip()

    # ---- delivery ----
    def maildir_files(self, lst="incidents"):
        """Paths of the delivered files (new/ and cur/)."""
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.maildir(lst), sub)
            if os.path.isdir(d):
                out += [os.path.join(d, n) for n in sorted(os.listdir(d)) if not n.startswith(".")]
        return out

    def delivered(self, lst="incidents"):
        return [Delivered(p) for p in self.maildir_files(lst)]

    def delivered_ids(self, lst="incidents"):
        return [d.hdr.get("X-Interlist-Id") for d in self.delivered(lst)]

    # ---- log ----
    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def log_events(self, event, **fields):
        """Log lines with event=EVENT and every given key=value."""
        out = []
        for line in self.log().splitlines():
            if (" event=%s " % event) not in line + " ":
                continue
            if all(re.search(r"(^| )%s=%s( |$)" % (re.escape(k), re.escape(str(v))), line)
                   for k, v in fields.items()):
                out.append(line)
        return out


class Tap:
    """TAP-like lines: 'ok N - what' / 'not ok N - what'."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, what, detail=None):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, what), flush=True)
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, what), flush=True)
            if detail is not None:
                for line in str(detail).splitlines():
                    print("#   " + line, flush=True)
        return bool(cond)

    def eq(self, got, want, what):
        return self.ok(got == want, what, None if got == want else "got:  %r\nwant: %r" % (got, want))

    def note(self, msg):
        for line in str(msg).splitlines():
            print("# " + line, flush=True)


class Federation:
    """Context manager owning a temporary folder and every relay in it.
    On exit every started process is killed (SIGKILL if still running)."""

    def __init__(self, name="il"):
        self.tmp = tempfile.mkdtemp(prefix="il-%s-" % name, dir="/tmp")
        self.relays = []

    def relay(self, rid, **kw):
        r = Relay(rid, self.tmp, **kw)
        self.relays.append(r)
        return r

    def wire_line(self, a, b, c):
        """a - b - c: b dials a, c dials b, and a and c know each other's
        signing keys (origins) without a session of their own."""
        a.add_peer(b)
        b.add_peer(a, dial=True)
        b.add_peer(c)
        c.add_peer(b, dial=True)
        a.add_origin(c)
        c.add_origin(a)

    def start_all(self, *relays):
        """Start the relays, then wait until each answers status."""
        for r in relays:
            r.start()
        for r in relays:
            r.wait_ready()

    @contextlib.contextmanager
    def small_disk(self, name, size):
        """A tmpfs of size (e.g. "3m") at tmp/name, for a full disk. Mounting
        needs root, as CI has; without it the test is skipped (exit 77). On
        the way out every relay is killed (they hold files there), then it
        is unmounted."""
        path = os.path.join(self.tmp, name)
        os.makedirs(path, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            print("# cannot mount a tmpfs here (not root?): skipped")
            sys.exit(77)
        try:
            yield path
        finally:
            self.kill_relays()
            subprocess.run(["umount", "-l", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def __enter__(self):
        return self

    def print_logs(self, n=40):
        for r in self.relays:
            print("# ---- log tail of %s (%s) ----" % (r.id, r.log_path), flush=True)
            for line in r.log_tail(n).splitlines():
                print("#   " + line, flush=True)

    def kill_relays(self):
        """SIGKILL every relay of this federation still running, by PID."""
        for r in self.relays:
            if r.running():
                try:
                    os.kill(r.proc.pid, signal.SIGKILL)
                    r.proc.wait(timeout=10)
                except Exception:
                    pass

    def __exit__(self, et, ev, tb):
        self.kill_relays()
        if et is not None or getattr(self, "failed", False):
            self.print_logs()
        if os.environ.get("IL_KEEP_TMP"):
            print("# kept %s" % self.tmp, flush=True)
        elif et is None and not getattr(self, "failed", False):
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print("# left %s for inspection" % self.tmp, flush=True)
        return False


def run(main, name=None):
    """Run main(tap, federation); exit 0 only if every check passed."""
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    t = Tap()
    start = time.monotonic()
    rc = 1
    try:
        with Federation(name) as fed:
            try:
                main(t, fed)
            except Failure as e:
                t.ok(False, "aborted: %s" % e)
            except Exception:
                t.ok(False, "aborted by an exception", traceback.format_exc())
            fed.failed = t.failed > 0
        rc = 1 if t.failed or t.n == 0 else 0
    finally:
        _kill_all()
        print("1..%d" % t.n)
        print("# %s: %s, %d checks, %d failed, %.1f s" % (name, "PASS" if rc == 0 else "FAIL", t.n,
                                                           t.failed, time.monotonic() - start),
              flush=True)
    sys.exit(rc)


def ilforge(target, tls_from, sender, sender_key, *extra, timeout=30):
    """Run ilforge against target (a Relay) presenting tls_from's TLS
    certificate and key, sending HELLO as sender signed with sender_key.
    Returns (exit status, stdout, parsed dict of its key=value words)."""
    args = [ILFORGE, "--url", target.url, "--tls-cert", tls_from.tls_cert, "--tls-key",
            tls_from.tls_key, "--peer-cert", target.tls_cert, "--peer-id", target.id,
            "--sender", sender, "--sender-key", sender_key] + [str(x) for x in extra]
    # A one-shot test tool frees nothing at exit; in a sanitizer build the
    # leak report would replace its exit status (and lose its stdout).
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(x for x in (env.get("ASAN_OPTIONS", ""), "detect_leaks=0") if x)
    try:
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           env=env)
    except subprocess.TimeoutExpired:
        return None, "timeout", {}
    out = r.stdout.decode() + r.stderr.decode()
    kv = dict(re.findall(r"(\w+)=(\S+)", r.stdout.decode()))
    return r.returncode, out, kv


def run_daemon(args, cwd=None, timeout=15):
    """Run interlistd with args to completion (for runs expected to exit on
    their own). Returns (exit status or None if it had to be killed, stdout,
    stderr). The process is recorded, so it is killed at exit whatever
    happens."""
    p = subprocess.Popen([INTERLISTD] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _PROCS.append(p)
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, out.decode(errors="replace"), err.decode(errors="replace")


def port_open(port, host="127.0.0.1"):
    """True if something accepts TCP connections on host:port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()
