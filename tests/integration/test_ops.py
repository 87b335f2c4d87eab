"""
test_ops: the operator's commands on real relays.

a listens and serves metrics over HTTP; b dials a; c is a peer of a that is
configured (a dials it) but never runs, so a's queue for c only grows.

Checked: `peers` JSON; `metrics` passes the strict text-format checker
(promcheck.py) and agrees with `status`; the HTTP endpoint serves the same
(404, 405, 400, 431, the connection limit, and a port already taken stops
the daemon); `queue c` lists what waits, oldest first, with age and size;
`purge` of one message and of the whole queue (answer, log line, counter),
refused for an unprivileged caller; `interlistctl backup` while a stream of
submits runs holds every message acknowledged before it started;
`status --human` prints the tables; a clean stop with a scrape connection
still open.
"""
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request

import promcheck
from harness import HEX64, INTERLISTCTL, Failure, free_port, make_msg, run, wait_until

LIST = "incidents"
RESULTS = ("accepted", "duplicates", "bad_signature", "unknown_origin", "auth_failed", "loops",
           "too_large", "stale", "held_tlp", "malformed", "unknown_list", "hop_limit", "expired",
           "not_accepted")
# Series whose value moves on its own between two scrapes.
VOLATILE = ("interlist_tls_cert_expiry_seconds", "interlist_peer_oldest_queued_seconds",
            "interlist_peer_last_seen_timestamp_seconds", "interlist_store_bytes")
PROM_CTYPE = "text/plain; version=0.0.4; charset=utf-8"
TEN_YEARS_NEARLY = 9 * 365 * 86400


def http(url, method="GET", timeout=10):
    """(status, headers, body bytes); HTTP errors are answers too."""
    req = urllib.request.Request(url, method=method, data=b"x" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def raw_http(port, data, timeout=10):
    """Send data as is, return all that comes back."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b
    finally:
        s.close()


def stable(fams):
    return {k: v for k, v in fams.series().items() if k[0] not in VOLATILE}


def check_metrics(t, a, ids_at_a):
    text = a.command("metrics")
    try:
        fams = promcheck.parse(text)
        t.ok(True, "metrics: passes the strict text-format 0.0.4 check")
    except promcheck.PromError as e:
        t.ok(False, "metrics: passes the strict text-format 0.0.4 check", "%s\n%s" % (e, text))
        raise Failure("metrics unparseable")
    st = a.status()
    for res in RESULTS:
        t.eq(fams.value("interlist_messages_total", result=res), st["counters"][res],
             "metrics: messages_total{result=%s} equals the status counter" % res)
    t.eq(fams.value("interlist_up"), 1, "metrics: interlist_up 1")
    t.eq(fams.value("interlist_purged_total"), 0, "metrics: nothing purged yet")
    for p in st["peers"]:
        pid = p["id"]
        t.eq(fams.value("interlist_peer_connected", peer=pid), 1 if p["connected"] else 0,
             "metrics: peer_connected{peer=%s} matches status" % pid)
        for m, k in (("interlist_peer_queued", "queued"), ("interlist_peer_sent_total", "sent"),
                     ("interlist_peer_received_total", "received"),
                     ("interlist_peer_rejected_total", "rejected"),
                     ("interlist_peer_connects_total", "connects")):
            t.eq(fams.value(m, peer=pid), p[k], "metrics: %s{peer=%s} matches status" % (m, pid))
    t.ok(fams.value("interlist_peer_oldest_queued_seconds", peer="c") >= 0,
         "metrics: oldest_queued_seconds for c present")
    ls = a.list_status(LIST, st)
    for m, k in (("interlist_list_ingested_total", "ingested"),
                 ("interlist_list_delivered_total", "delivered"),
                 ("interlist_list_pending", "pending"), ("interlist_list_failed", "failed")):
        t.eq(fams.value(m, list=LIST), ls[k], "metrics: %s{list=%s} matches status" % (m, LIST))
    t.eq(fams.value("interlist_delivery_latency_seconds_count", list=LIST), ls["delivered"],
         "metrics: one latency observation per delivery")
    buckets = fams.samples("interlist_delivery_latency_seconds_bucket")
    t.ok(len(buckets) > 5 and buckets[-1][0]["le"] == "+Inf", "metrics: latency buckets up to +Inf")
    t.ok(fams.value("interlist_delivery_latency_seconds_sum", list=LIST) >= 0,
         "metrics: latency sum present")
    for cert in ("own", "b", "c"):
        v = fams.value("interlist_tls_cert_expiry_seconds", cert=cert)
        t.ok(v > TEN_YEARS_NEARLY, "metrics: cert %s expires in ~10 years (%d s)" % (cert, v))
    t.ok(fams.value("interlist_store_messages") >= len(ids_at_a), "metrics: store_messages counted")
    t.ok(fams.value("interlist_store_bytes") > 0, "metrics: store_bytes > 0")
    for name, f in fams.items():
        if f.type == "counter":
            t.ok(name.endswith("_total"), "metrics: counter %s ends in _total" % name)
    rc, out, _ = a.ctl("metrics")
    t.ok(rc == 0 and promcheck.errors(out) == [], "interlistctl metrics prints the same format")
    return fams


def check_http(t, a, port):
    base = "http://127.0.0.1:%d" % port
    before = stable(promcheck.parse(a.command("metrics")))
    code, hdr, body = http(base + "/metrics")
    after = stable(promcheck.parse(a.command("metrics")))
    t.eq(code, 200, "http: GET /metrics answers 200")
    t.eq(hdr.get("Content-Type"), PROM_CTYPE, "http: Content-Type of format 0.0.4")
    t.eq(hdr.get("Content-Length"), str(len(body)), "http: Content-Length matches the body")
    t.eq(hdr.get("Connection"), "close", "http: Connection: close")
    try:
        hfams = promcheck.parse(body.decode())
        t.ok(True, "http: body passes the strict check")
    except promcheck.PromError as e:
        t.ok(False, "http: body passes the strict check", str(e))
        return
    got = stable(hfams)
    t.eq(set(got), set(before), "http: the same series as the socket's metrics")
    same = {k: v for k, v in got.items() if before.get(k) == after.get(k)}
    t.ok(all(before[k] == v for k, v in same.items()) and len(same) > 50,
         "http: the same values as the socket's metrics (%d series)" % len(same))
    code, _, _ = http(base + "/other")
    t.eq(code, 404, "http: another path answers 404")
    code, hdr, _ = http(base + "/metrics", method="POST")
    t.eq(code, 405, "http: POST answers 405")
    t.eq(hdr.get("Allow"), "GET, HEAD", "http: 405 says what is allowed")
    code, hdr, body = http(base + "/metrics", method="HEAD")
    t.ok(code == 200 and body == b"" and int(hdr.get("Content-Length")) > 0,
         "http: HEAD answers the headers only")
    ans = raw_http(port, b"GARBAGE\r\n\r\n")
    t.ok(ans.startswith(b"HTTP/1.1 400 "), "http: a malformed request line answers 400", ans[:80])
    ans = raw_http(port, b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n")
    t.ok(ans.startswith(b"HTTP/1.1 431 "), "http: an oversized request answers 431", ans[:80])
    # Sixteen idle connections take every slot: the next one is told so.
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(16)]
    try:
        time.sleep(0.2)
        ans = raw_http(port, b"GET /metrics HTTP/1.1\r\n\r\n")
        t.ok(ans.startswith(b"HTTP/1.1 503 "), "http: connections are bounded (503 past 16)", ans[:80])
    finally:
        for s in idle:
            s.close()
    wait_until(lambda: http(base + "/metrics")[0] == 200, 10, "metrics endpoint free again")
    t.ok(True, "http: slots free again once the idle connections close")


def check_queue_purge(t, fed, a, ids_at_a):
    q = json.loads(a.command("queue c"))
    st_q = a.peer("c")["queued"]
    t.eq(q["peer"], "c", "queue: names the peer")
    t.eq(q["queued"], st_q, "queue: total matches status")
    t.eq(len(q["messages"]), st_q, "queue: lists every queued message")
    t.eq(q["truncated"], False, "queue: not truncated")
    ids = [m["id"] for m in q["messages"]]
    t.ok(set(ids_at_a) <= set(ids), "queue: the posts at a wait for c")
    t.ok(all(HEX64.match(i) for i in ids), "queue: ids are 64 hex digits")
    t.ok(all(m["size"] > 100 and m["age_s"] >= 0 for m in q["messages"]), "queue: sizes and ages")
    ages = [m["age_s"] for m in q["messages"]]
    t.ok(ages == sorted(ages, reverse=True), "queue: oldest first", ages)
    rc, _, err = a.ctl("queue", "zz")
    t.ok(rc == 65 and "unknown peer" in err, "queue: unknown peer exits 65", (rc, err))
    rc, _, _ = a.ctl("queue")
    t.eq(rc, 64, "queue: no peer exits 64")

    # An unprivileged caller: first the socket's mode keeps nobody out.
    if os.geteuid() != 0:
        t.note("not root: skipping the unprivileged purge checks")
    else:
        ctl = os.path.join(fed.tmp, "interlistctl")   # reachable for nobody
        shutil.copy(INTERLISTCTL, ctl)
        os.chmod(ctl, 0o755)
        os.chmod(fed.tmp, 0o755)
        os.chmod(a.dir, 0o755)
        as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", ctl,
                     "-s", a.sock]

        def nobody(*args):
            r = subprocess.run(as_nobody + list(args), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30)
            return r.returncode, r.stdout.decode(), r.stderr.decode()
        rc, _, err = nobody("peers")
        t.ok(rc == 69, "unprivileged: socket mode 0660 keeps nobody out (exit 69)", (rc, err))
        # Give nobody's group the socket: it may connect, and read, not change.
        os.chown(a.sock, 0, 65534)
        rc, out, err = nobody("peers")
        t.ok(rc == 0 and json.loads(out)["peers"], "unprivileged: read-only peers allowed", (rc, err))
        rc, out, err = nobody("purge", "c")
        t.ok(rc == 77 and "permission denied" in err, "unprivileged: purge refused with 77", (rc, err))
        rc, out, err = nobody("purge", "nosuchpeer")
        t.ok(rc == 77, "unprivileged: refused before the peer is even looked up", (rc, err))
        t.eq(a.peer("c")["queued"], st_q, "unprivileged: the queue is untouched")
        t.eq(a.log_events("purged"), [], "unprivileged: nothing logged as purged")

    # Privileged: one message, then the rest.
    one = ids[0]
    rc, out, err = a.ctl("purge", "c", one)
    t.ok(rc == 0 and json.loads(out) == {"peer": "c", "purged": 1}, "purge one: answers 1", (rc, out, err))
    q2 = json.loads(a.command("queue c"))
    t.ok(one not in [m["id"] for m in q2["messages"]] and q2["queued"] == st_q - 1,
         "purge one: gone from the queue, the rest stays")
    t.eq(len(a.log_events("purged", peer="c", msg=one, messages=1)), 1, "purge one: logged")
    rc, _, err = a.ctl("purge", "c", one)
    t.ok(rc == 65 and "not queued" in err, "purge one again: exits 65", (rc, err))
    rc, _, _ = a.ctl("purge", "c", "xyz")
    t.eq(rc, 64, "purge: a malformed id exits 64 (an argument it does not take, as retry)")
    rc, _, _ = a.ctl("purge", "zz")
    t.eq(rc, 65, "purge: an unknown peer exits 65")
    rc, out, err = a.ctl("purge", "c")
    t.ok(rc == 0 and json.loads(out)["purged"] == st_q - 1, "purge all: answers the rest", (rc, out, err))
    t.eq(a.peer("c")["queued"], 0, "purge all: c's queue is empty")
    t.eq(json.loads(a.command("queue c"))["messages"], [], "purge all: queue lists nothing")
    t.eq(len(a.log_events("purged", peer="c", msg="all", messages=st_q - 1)), 1, "purge all: logged")
    fams = promcheck.parse(a.command("metrics"))
    t.eq(fams.value("interlist_purged_total"), st_q, "purge: counted in interlist_purged_total")
    t.eq(a.peer("b")["connected"], True, "purge: b's session is unaffected")


def check_backup(t, fed, a):
    acked = []                  # (monotonic time acknowledged, id)
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def submitter(k):
        n = 0
        while not stop.is_set():
            n += 1
            # 32 KiB each: enough store for the copy to take a while.
            body = ("load %d/%d " % (k, n)) * 3000 + "\n"
            rc, out = a.submit(LIST, make_msg("load-%d-%d@example.org" % (k, n), body=body))
            if rc != 0:
                errors.append((rc, a.last_submit_stderr))
                return
            with lock:
                acked.append((time.monotonic(), out))
    threads = [threading.Thread(target=submitter, args=(k,), daemon=True) for k in range(3)]
    for th in threads:
        th.start()
    try:
        wait_until(lambda: len(acked) >= 150 or errors, 120, "150 submits acknowledged")
        out_path = os.path.join(fed.tmp, "backup.db")
        with lock:
            before = {i for _, i in acked}
        started = time.monotonic()
        r = subprocess.run([INTERLISTCTL, "-c", a.conf_path, "backup", out_path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        ended = time.monotonic()
        wait_until(lambda: len(acked) > len(before) + 5 or errors, 30, "submits after the backup")
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=60)
    t.eq(errors, [], "backup: every submit of the stream acknowledged")
    t.ok(len(acked) > len(before), "backup: submits went on around the backup")
    with lock:
        during = [i for ts, i in acked if started <= ts <= ended]
    t.note("backup took %.3f s; %d submits acknowledged meanwhile, %d before" %
           (ended - started, len(during), len(before)))
    t.eq(r.returncode, 0, "backup: exits 0 under load (%s)" % r.stderr.decode().strip())
    out = r.stdout.decode()
    words = out.split()
    printed = int(words[-2]) if len(words) >= 2 and words[-2].isdigit() else None
    t.ok(printed is not None and out.strip().endswith("messages"), "backup: prints the count", out)
    t.eq(oct(os.stat(out_path).st_mode & 0o777), "0o600", "backup: the copy is 0600")
    db = sqlite3.connect("file:%s?mode=ro" % out_path, uri=True)
    try:
        t.eq(db.execute("PRAGMA integrity_check").fetchone()[0], "ok", "backup: the copy is intact")
        ids = {row[0].hex() for row in db.execute("SELECT id FROM messages")}
        t.eq(db.execute("SELECT count(*) FROM messages").fetchone()[0], printed,
             "backup: printed count is the copy's")
    finally:
        db.close()
    missing = before - ids
    t.ok(not missing, "backup: holds all %d messages acknowledged before it began" % len(before),
         "missing: %s" % sorted(missing)[:5])
    t.ok(a.running() and a.status(), "backup: the relay runs on")

    rc = subprocess.run([INTERLISTCTL, "-c", a.conf_path, "backup", out_path],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE).returncode
    t.eq(rc, 73, "backup: refuses an existing file (73)")
    db = sqlite3.connect("file:%s?mode=ro" % out_path, uri=True)
    t.eq(db.execute("SELECT count(*) FROM messages").fetchone()[0], printed,
         "backup: the existing file is left alone")
    db.close()
    rc = subprocess.run([INTERLISTCTL, "-c", os.path.join(fed.tmp, "nope.conf"), "backup",
                         os.path.join(fed.tmp, "b2.db")], stderr=subprocess.PIPE).returncode
    t.eq(rc, 78, "backup: a config that can't be read exits 78")
    empty = os.path.join(fed.tmp, "empty-data")
    os.makedirs(empty)
    conf2 = os.path.join(fed.tmp, "other.conf")
    with open(conf2, "w") as f:
        f.write(a.config_text().replace("data_dir = " + a.data, "data_dir = " + empty))
    b2 = os.path.join(fed.tmp, "b2.db")
    rc = subprocess.run([INTERLISTCTL, "-c", conf2, "backup", b2], stderr=subprocess.PIPE).returncode
    t.eq(rc, 74, "backup: no store to read exits 74")
    t.ok(not os.path.exists(b2) and os.listdir(empty) == [],
         "backup: no file left behind, nothing created in data_dir")


def check_human(t, a):
    rc, out, err = a.ctl("status", "--human")
    t.eq(rc, 0, "status --human exits 0 (%s)" % err.strip())
    lines = out.splitlines()
    t.ok(lines and lines[0].startswith("relay a ") and " up " in lines[0], "human: relay line", out)
    head = [i for i, l in enumerate(lines) if l.split()[:2] == ["PEER", "CONNECTED"]]
    t.ok(head, "human: a peers table", out)
    if head:
        rows = {l.split()[0]: l for l in lines[head[0] + 1:head[0] + 3]}
        t.ok(set(rows) == {"b", "c"}, "human: one row per peer id", out)
        t.ok("yes" in rows.get("b", "") and "ago" in rows.get("b", ""), "human: b connected, seen ... ago",
             rows.get("b"))
        t.ok(rows.get("c", "").split()[1:2] == ["no"] and rows.get("c", "").endswith("never"),
             "human: c not connected, never seen", rows.get("c"))
    t.ok(any(l.split()[:1] == [LIST] for l in lines), "human: a lists table", out)
    t.ok(any(l.split()[:1] == ["accepted"] for l in lines), "human: the non-zero counters", out)
    t.ok(not any(l.split()[:1] == ["loops"] for l in lines), "human: zero counters left out", out)
    rc, out, _ = a.ctl("status")
    t.ok(rc == 0 and json.loads(out)["id"] == "a", "status without --human is the JSON")


def main(t, fed):
    t.eq(promcheck.self_test(), [], "promcheck refuses broken expositions")
    mport = free_port()
    a = fed.relay("a", relay_conf={"metrics_listen": "http://127.0.0.1:%d" % mport})
    b = fed.relay("b", listen=False)
    c = fed.relay("c")                     # configured at a, never started
    a.add_peer(b)
    a.add_peer(c, dial=True)
    b.add_peer(a, dial=True)
    started = time.time()
    for r in (a, b):
        r.start()
        r.wait_ready()
    wait_until(lambda: a.peer("b")["connected"] and b.peer("a")["connected"], 20, "a-b session up")

    ids_at_a, ids_at_b = [], []
    for i in range(4):
        rc, out = a.submit(LIST, make_msg("at-a-%d@example.org" % i))
        t.ok(rc == 0 and HEX64.match(out), "submit %d at a" % i)
        ids_at_a.append(out)
    for i in range(3):
        rc, out = b.submit(LIST, make_msg("at-b-%d@example.org" % i))
        t.ok(rc == 0 and HEX64.match(out), "submit %d at b" % i)
        ids_at_b.append(out)
    wait_until(lambda: set(ids_at_a) <= set(b.delivered_ids(LIST)), 20, "a's posts at b")
    wait_until(lambda: set(ids_at_b) <= set(a.delivered_ids(LIST)), 20, "b's posts at a")
    wait_until(lambda: a.list_status(LIST)["pending"] == 0 and a.peer("b")["queued"] == 0, 20,
               "a settled towards b")
    wait_until(lambda: a.peer("c")["queued"] == len(ids_at_a) + len(ids_at_b), 20,
               "every post queued at a for c")

    # peers
    pj = json.loads(a.command("peers"))
    by = {p["id"]: p for p in pj["peers"]}
    t.eq(sorted(by), ["b", "c"], "peers: one entry per configured peer")
    pb, pc = by.get("b", {}), by.get("c", {})
    t.eq(pb.get("address"), "inbound", "peers: b dials us: address inbound")
    t.eq(pc.get("address"), c.url, "peers: c's address is its url")
    t.eq(pb.get("connected"), True, "peers: b connected")
    t.ok(isinstance(pb.get("connected_since"), int) and started - 2 <= pb["connected_since"] <= time.time() + 2,
         "peers: b connected since a Unix time of this run", pb.get("connected_since"))
    t.eq(pc.get("connected"), False, "peers: c not connected")
    t.eq(pc.get("connected_since"), None, "peers: c connected since null")
    t.eq(pb.get("last_error"), None, "peers: b has no last error")
    # nng retries a refused dial quietly: c's last error may well be null.
    t.ok(pc.get("last_error") is None or isinstance(pc["last_error"], str),
         "peers: c's last error is null or a string", pc.get("last_error"))
    t.eq(pc["queued"], len(ids_at_a) + len(ids_at_b), "peers: c's queue depth")
    t.ok(isinstance(pc["oldest_queued_s"], int) and 0 <= pc["oldest_queued_s"] <= time.time() - started + 2,
         "peers: age of c's oldest queued message", pc["oldest_queued_s"])
    t.eq((pb.get("queued"), pb.get("oldest_queued_s")), (0, None), "peers: b's queue empty, age null")
    t.ok(a.command("nonsense").startswith("err 64 unknown command"), "unknown command: err 64")

    check_metrics(t, a, ids_at_a)
    check_http(t, a, mport)
    check_human(t, a)
    check_queue_purge(t, fed, a, ids_at_a)
    check_backup(t, fed, a)

    # A second relay on a taken metrics port does not start.
    d = fed.relay("d", listen=False, relay_conf={"metrics_listen": "http://127.0.0.1:%d" % mport})
    d.start()
    try:
        rc = d.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        rc = None
    t.ok(rc not in (None, 0), "metrics port taken: interlistd exits non-zero (%r)" % rc)
    t.ok(d.log_events("start_failed"), "metrics port taken: start_failed logged", d.log_tail(5))

    # A relay whose peer listen address is taken exits 75 as well (it used
    # to hang in its start-failure path, its loop held by nng's wake-up).
    e = fed.relay("e")
    e.port = a.port
    e.start()
    try:
        rc = e.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        rc = None
    t.eq(rc, 75, "listen address taken: interlistd exits 75")
    t.ok(e.log_events("start_failed"), "listen address taken: start_failed logged", e.log_tail(5))

    # A clean stop, with a scrape connection still open.
    hold = socket.create_connection(("127.0.0.1", mport), timeout=10)
    try:
        b.stop()
        a.stop()
        t.ok(True, "a and b stop cleanly (exit 0) with a metrics connection open")
    finally:
        hold.close()

    # No daemon: reading creates the store's -wal/-shm. Run as root for a
    # store owned by another user, they must end up that user's.
    if os.geteuid() == 0:
        for n in os.listdir(a.data):
            os.chown(os.path.join(a.data, n), 65534, 65534)
        os.chown(a.data, 65534, 65534)
        out3 = os.path.join(fed.tmp, "b3.db")
        r = subprocess.run([INTERLISTCTL, "-c", a.conf_path, "backup", out3],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        t.eq(r.returncode, 0, "backup with the daemon stopped exits 0")
        owners = {n: os.stat(os.path.join(a.data, n)).st_uid for n in os.listdir(a.data)}
        t.ok(all(u == 65534 for u in owners.values()),
             "backup as root leaves every store file with the store's owner", owners)


run(main)
