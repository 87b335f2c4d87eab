"""
test_reload_retire: a reload changes a list's delivery while an SMTP
delivery of it is under way (the new deliverer waits for the old one to
drain), and a second reload removes the list before that delivery ends.
When it ends, nothing may start on the removed list: the relay used to start
a deliverer on it, reading the first reload's config after the second had
freed it (a heap-use-after-free under ASan, which this test runs under too).
"""
import os

import harness
from harness import make_msg, run, wait_until
from smtp_sink import SmtpSink

LIST = "incidents"


def eq(t, got, want, what, detail):
    t.ok(got == want, "%s (%r)" % (what, got), detail)


def main(t, fed):
    sink = SmtpSink(os.path.join(fed.tmp, "sink")).start()
    harness._PROCS.append(sink.proc)
    sink.mode("250 delay=3")
    url = "smtp://127.0.0.1:%d" % sink.port
    lists = (LIST, "slow")
    p = fed.relay("a", lists=lists)
    q = fed.relay("b", listen=False, lists=lists,
                  list_conf={"slow": {"deliver": url, "rcpt": "one@example.org", "smtp_tls": "off"}})
    p.add_peer(q)
    q.add_peer(p, dial=True)
    fed.start_all(p, q)
    wait_until(lambda: p.peer("b")["connected"], 20, "b connected to a")
    rc, _ = p.submit("slow", make_msg("slow-1@example.org"))
    t.eq(rc, 0, "a post to the slow list")
    wait_until(lambda: any(a[0] == "begin" for a in sink.attempts()), 20, "the SMTP delivery to begin")

    q.list_conf["slow"]["rcpt"] = "two@example.org"
    q.write_config()
    rc, _, err = q.ctl("reload")
    eq(t, rc, 0, "reload 1 (the slow list's rcpt changes) while it delivers", err)
    q.lists = [LIST]
    q.write_config()
    rc, _, err = q.ctl("reload")
    eq(t, rc, 0, "reload 2 (the slow list removed) before that delivery ends", err)
    wait_until(lambda: len(sink.messages()) == 1, 20, "the delivery under way to end")
    rc, _ = p.submit(LIST, make_msg("after-reloads@example.org"))
    wait_until(lambda: "after-reloads@example.org" in [d.message_id for d in q.delivered(LIST)], 20,
               "the other list still delivers")
    t.eq([l["name"] for l in q.status()["lists"]], [LIST], "b runs on, without the slow list")
    q.stop()
    t.eq(q.exits[-1], 0, "b stops cleanly (exit 0)")
    p.stop()
    sink.stop()



if __name__ == "__main__":
    run(main)
