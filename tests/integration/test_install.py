"""
test_install.py — `meson install` into a DESTDIR puts every file where the
systemd unit, the man pages and the manuals say it is:

- the binaries named by the unit's ExecStart/ExecReload exist and run;
- the unit has the settings the packaging promises (notify, user, state and
  runtime folders, hardening) and agrees with the sysusers entry and the
  example configuration; `systemd-analyze verify` accepts it (skipped when
  systemd-analyze cannot run here);
- the man pages are installed and format without warnings (groff, man),
  interlistctl(8) names every verb of `interlistctl --help` and
  interlist.conf(5) every key of docs/configuration.md;
- the example configuration sets every documented key and passes
  `interlistctl check` once keys exist for it (a copy with its paths moved
  into the temporary folder).

Environment: IL_BUILD_ROOT (the build dir, set by meson), IL_SOURCE_ROOT.
"""
import json
import os
import re
import shutil
import stat
import subprocess

from harness import run

BUILD = os.environ.get("IL_BUILD_ROOT", "build")
SOURCE = os.environ.get("IL_SOURCE_ROOT",
                        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def sh(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, **kw)


def build_options():
    r = sh(["meson", "introspect", "--buildoptions", BUILD])
    if r.returncode != 0:
        raise RuntimeError("meson introspect: %s" % r.stderr.decode())
    return {o["name"]: o["value"] for o in json.loads(r.stdout)}


def parse_unit(text):
    """{(section, key): [values]} of a systemd unit file."""
    out, sect = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            sect = m.group(1)
            continue
        k, _, v = line.partition("=")
        out.setdefault((sect, k.strip()), []).append(v.strip())
    return out


def parse_ini(text):
    """[(type, name, {key: value})] of an interlist config (values without comments)."""
    sects = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        m = re.match(r"^\[\s*(\w+)(?:\s+([^\]\s]+))?\s*\]", s)
        if m:
            sects.append((m.group(1), m.group(2), {}))
            continue
        k, _, v = s.partition("=")
        v = re.split(r"(?:^|\s)[#;]", v.strip(), maxsplit=1)[0].strip()
        sects[-1][2][k.strip()] = v
    return sects


def documented_keys():
    """{section type: [keys]} from the tables of docs/configuration.md."""
    keys, sect = {}, None
    with open(os.path.join(SOURCE, "docs", "configuration.md")) as f:
        for line in f:
            m = re.match(r"^## \[(\w+)", line)
            if m:
                sect = m.group(1)
                keys[sect] = []
                continue
            if line.startswith("## "):
                sect = None
            m = re.match(r"^\| `([a-z_]+)` \|", line)
            if m and sect:
                keys[sect].append(m.group(1))
    return keys


def main(t, fed):
    opts = build_options()
    prefix = opts["prefix"]
    where = {k: os.path.join(prefix, opts[k]) for k in ("bindir", "sbindir", "sysconfdir", "mandir")}
    dest = os.path.join(fed.tmp, "dest")
    t.note("prefix %s, destdir %s" % (prefix, dest))

    r = sh(["meson", "install", "--no-rebuild", "--destdir", dest, "-C", BUILD])
    if not t.ok(r.returncode == 0, "meson install --destdir", (r.stdout + r.stderr).decode()[-3000:]):
        return

    def d(path):
        return os.path.join(dest, path.lstrip("/"))

    # ---- binaries ----
    ctl = d(os.path.join(where["bindir"], "interlistctl"))
    daemon = d(os.path.join(where["sbindir"], "interlistd"))
    for path, name in ((ctl, "interlistctl"), (daemon, "interlistd")):
        t.ok(os.path.isfile(path) and os.access(path, os.X_OK), "%s installed executable at %s" % (name, path))
        r = sh([path, "--version"])
        t.ok(r.returncode == 0 and r.stdout.decode().startswith(name + " "),
             "installed %s --version runs" % name, (r.stdout + r.stderr).decode())

    # ---- systemd unit ----
    unit_path = d(os.path.join(prefix, "lib", "systemd", "system", "interlistd.service"))
    if not t.ok(os.path.isfile(unit_path), "unit installed at %s" % unit_path):
        return
    with open(unit_path) as f:
        unit_text = f.read()
    u = parse_unit(unit_text)
    left = re.findall(r"@[A-Z_]+@", unit_text)
    t.eq(left, [], "unit: every @VAR@ substituted")

    with open(os.path.join(SOURCE, "include", "il", "config.h")) as f:
        default_conf = re.search(r'#define IL_DEFAULT_CONFIG "([^"]+)"', f.read()).group(1)
    exec_start = u.get(("Service", "ExecStart"), [""])[0].split()
    exec_reload = u.get(("Service", "ExecReload"), [""])[0].split()
    t.eq(exec_start, [os.path.join(where["sbindir"], "interlistd"), "-c", default_conf],
         "ExecStart is SBINDIR/interlistd -c IL_DEFAULT_CONFIG")
    t.eq(exec_reload, [os.path.join(where["bindir"], "interlistctl"), "-c", default_conf, "reload"],
         "ExecReload is BINDIR/interlistctl -c IL_DEFAULT_CONFIG reload")
    for cmd in (exec_start, exec_reload):
        if cmd:
            p = d(cmd[0])
            t.ok(os.path.isfile(p) and os.access(p, os.X_OK), "unit's %s exists in DESTDIR" % cmd[0])

    with open(os.path.join(BUILD, "il_build.h")) as f:
        have_systemd = re.search(r"#define HAVE_SYSTEMD 1", f.read()) is not None
    want = {
        "Type": "notify" if have_systemd else "simple",
        "User": "interlist", "Group": "interlist",
        "StateDirectory": "interlist", "RuntimeDirectory": "interlist",
        "ProtectSystem": "strict", "NoNewPrivileges": "yes", "Restart": "on-failure",
        "PrivateTmp": "yes", "ProtectHome": "yes", "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes", "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native", "UMask": "0077",
    }
    for k, v in want.items():
        t.eq(u.get(("Service", k)), [v], "unit: %s=%s" % (k, v))
    t.eq(sorted(u.get(("Service", "RestrictAddressFamilies"), [""])[0].split()),
         ["AF_INET", "AF_INET6", "AF_UNIX"], "unit: RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6")
    t.ok("ReadWritePaths" in unit_text, "unit tells the admin about ReadWritePaths for maildirs")
    t.eq(u.get(("Install", "WantedBy")), ["multi-user.target"], "unit: WantedBy=multi-user.target")

    # ---- sysusers ----
    su = d(os.path.join(prefix, "lib", "sysusers.d", "interlist.conf"))
    if t.ok(os.path.isfile(su), "sysusers.d entry installed at %s" % su):
        with open(su) as f:
            lines = [l.strip() for l in f if l.strip() and not l.startswith("#")]
        t.eq(lines, ['u interlist - "interlist relay" /var/lib/interlist'], "sysusers: the interlist user")

    # ---- systemd-analyze verify (a copy whose paths point into DESTDIR) ----
    sa = shutil.which("systemd-analyze")
    if sa:
        vdir = os.path.join(fed.tmp, "verify")
        os.makedirs(vdir)
        vunit = os.path.join(vdir, "interlistd.service")
        with open(vunit, "w") as f:
            f.write(unit_text.replace(os.path.join(where["sbindir"], "interlistd"), daemon)
                    .replace(os.path.join(where["bindir"], "interlistctl"), ctl))
        r = sh([sa, "verify", "--man=no", vunit])
        out = (r.stdout + r.stderr).decode()
        # Complaints about the file itself (a line of it, a key, a command);
        # anything else (no manager, missing targets) is this machine's.
        about_unit = [l for l in out.splitlines()
                      if re.search(re.escape(vunit) + r":\d+:", l)
                      or re.search(r"Unknown (key|section|lvalue)|[Ii]nvalid|Failed to parse|"
                                   r"is not executable|bad unit file setting", l)]
        if about_unit:
            t.ok(False, "systemd-analyze verify accepts the unit", out)
        elif r.returncode != 0:
            t.note("systemd-analyze verify cannot run here (exit %d), skipped: %s"
                   % (r.returncode, out.strip()[:300]))
        else:
            t.ok(True, "systemd-analyze verify accepts the unit")
    else:
        t.note("no systemd-analyze: unit verification skipped")

    # ---- man pages ----
    mandir = d(where["mandir"])
    pages = {"interlistd.8": "man8", "interlistctl.8": "man8", "interlist.conf.5": "man5"}
    texts = {}
    for page, sec in pages.items():
        p = os.path.join(mandir, sec, page)
        if not t.ok(os.path.isfile(p), "man page %s/%s installed" % (sec, page)):
            continue
        with open(p) as f:
            texts[page] = f.read()
        if shutil.which("groff"):
            r = sh(["groff", "-man", "-Tutf8", "-z", "-ww", p])
            err = r.stderr.decode()
            t.ok(r.returncode == 0 and not err.strip(), "groff formats %s without warnings" % page, err)
        else:
            t.note("no groff: %s not formatted" % page)
        if shutil.which("man"):
            env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat", LC_ALL="C.UTF-8")
            r = sh(["man", "-l", p], env=env)
            t.ok(r.returncode == 0 and len(r.stdout) > 500, "man -l %s renders" % page,
                 r.stderr.decode()[:1000])

    if "interlistctl.8" in texts:
        r = sh([ctl, "--help"])
        verbs = sorted(set(re.findall(r"^\s+interlistctl (?:\[[^\]]*\] )?([a-z]+)", r.stdout.decode(), re.M)))
        t.ok(len(verbs) >= 10, "interlistctl --help lists its verbs", verbs)
        page = texts["interlistctl.8"]
        # each verb heads a .TP entry: `.B VERB`, `.BI VERB ...` or `.BI "VERB ...`
        missing = [v for v in verbs if not re.search(r'^\.(?:B|BI|BR) "?%s\b' % v, page, re.M)]
        t.eq(missing, [], "interlistctl(8) documents every verb of interlistctl --help")
    doc_keys = documented_keys()
    t.ok(all(doc_keys.get(s) for s in ("relay", "peer", "origin", "list")),
         "docs/configuration.md has key tables for relay, peer, origin and list", doc_keys)
    if "interlist.conf.5" in texts:
        page = texts["interlist.conf.5"]
        missing = sorted({k for ks in doc_keys.values() for k in ks
                          if not re.search(r"^\.BI? %s\b" % k, page, re.M)})
        t.eq(missing, [], "interlist.conf(5) documents every key of docs/configuration.md")

    # ---- the example configuration ----
    ex = d(os.path.join(where["sysconfdir"], "interlist", "interlist.conf.example"))
    if not t.ok(os.path.isfile(ex), "example config installed at %s" % ex):
        return
    with open(ex) as f:
        ex_text = f.read()
    sects = parse_ini(ex_text)
    types = [s[0] for s in sects]
    t.eq((types.count("relay"), types.count("peer"), types.count("origin"), types.count("list")),
         (1, 2, 1, 2), "example: one [relay], two [peer], one [origin], two [list]")
    relay = next((s[2] for s in sects if s[0] == "relay"), {})
    t.eq(relay.get("data_dir"), "/var/lib/interlist", "example: data_dir = /var/lib/interlist (StateDirectory)")
    t.eq(relay.get("status_socket"), "/run/interlist/status.sock",
         "example: status_socket in /run/interlist (RuntimeDirectory)")
    delivers = sorted(s[2].get("deliver", "").split(":")[0] for s in sects if s[0] == "list")
    t.eq(delivers, ["maildir", "smtp"], "example: one maildir list and one smtp list")
    for typ, keys in doc_keys.items():
        used = set()
        for s in sects:
            if s[0] == typ:
                used |= set(s[2])
        t.eq(sorted(set(keys) - used), [], "example: every [%s] key of docs/configuration.md is set" % typ)

    # A copy with every absolute path moved under ROOT, and keys made for it.
    root = os.path.join(fed.tmp, "root")
    copy_text = ex_text
    for top in ("/etc/interlist/", "/var/lib/interlist", "/run/interlist/", "/var/mail/"):
        copy_text = copy_text.replace(" " + top, " " + root + top).replace(":" + top, ":" + root + top)
    os.makedirs(os.path.join(root, "etc", "interlist"))
    conf = os.path.join(root, "etc", "interlist", "interlist.conf")
    with open(conf, "w") as f:
        f.write(copy_text)
    r = sh([ctl, "-c", conf, "check"])
    t.eq(r.returncode, 78, "check refuses the copy before its keys exist (exit 78)")

    made = []
    for typ, name, kv in parse_ini(copy_text):
        if typ not in ("relay", "peer", "origin"):
            continue
        rid = kv["id"] if typ == "relay" else name
        files = [kv[k] for k in ("tls_cert", "sign_key") if k in kv]
        files += [p.strip() for p in kv.get("sign_pub", "").split(",") if p.strip()]
        for folder in sorted({os.path.dirname(p) for p in files}):
            if not os.path.exists(os.path.join(folder, rid + ".sign.key")):
                r = sh([ctl, "init", "--id", rid, "--dir", folder])
                t.ok(r.returncode == 0, "interlistctl init --id %s --dir %s" % (rid, folder), r.stderr.decode())
                made.append(rid)
    t.ok(set(made) >= {relay.get("id")}, "keys made for the relay and its peers and origins", made)
    r = sh([ctl, "-c", conf, "check"])
    t.ok(r.returncode == 0 and r.stdout.decode().strip() == conf + ": ok",
         "installed interlistctl check accepts the example config", (r.stdout + r.stderr).decode())
    r = sh([ctl, "check", "-c", conf])
    t.eq(r.returncode, 0, "check -c FILE after the verb works too")
    mode = stat.S_IMODE(os.stat(os.path.join(root, "etc", "interlist", "keys", relay["id"] + ".sign.key")).st_mode)
    t.eq(mode, 0o600, "init writes the signing key 0600")


run(main)
