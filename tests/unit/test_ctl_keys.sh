#!/bin/bash
# test_ctl_keys.sh — interlistctl init / fingerprint / check, as an operator
# runs them. Needs INTERLISTCTL (the binary's path, set by meson).
set -u

: "${INTERLISTCTL:?set INTERLISTCTL to the interlistctl binary}"
ctl=$INTERLISTCTL
umask 022
tmp=$(mktemp -d /tmp/il-ctl-keys-XXXXXX) || exit 2
trap 'rm -rf "$tmp"' EXIT

failures=0
checks=0
fail() {
	failures=$((failures + 1))
	echo "test_ctl_keys.sh:${BASH_LINENO[1]}: $*" >&2
}
# expect STATUS CMD...: run CMD (stdout to $tmp/out, stderr to $tmp/err).
expect() {
	local want=$1
	shift
	checks=$((checks + 1))
	"$@" >"$tmp/out" 2>"$tmp/err"
	local got=$?
	[ "$got" -eq "$want" ] || fail "exit $got, want $want: $* ($(head -c 300 "$tmp/err"))"
}
check() {
	checks=$((checks + 1))
	"$@" || fail "failed: $*"
}
mode() { stat -c %a "$1"; }

D=$tmp/keys

# -- init: four files, their modes, a folder made 0700 -------------------------
expect 0 "$ctl" init --id t1 --dir "$D"
cp "$tmp/out" "$tmp/stanza"
check test "$(mode "$D")" = 700
check test "$(mode "$D/t1.sign.key")" = 600
check test "$(mode "$D/t1.tls.key")" = 600
check test "$(mode "$D/t1.sign.pub")" = 644
check test "$(mode "$D/t1.tls.crt")" = 644
check test "$(ls -A "$D" | wc -l)" = 4
check grep -qx -- '-----BEGIN PRIVATE KEY-----' "$D/t1.sign.key"
check grep -qx -- '-----BEGIN PUBLIC KEY-----' "$D/t1.sign.pub"
check grep -qx -- '-----BEGIN EC PRIVATE KEY-----' "$D/t1.tls.key"
check grep -qx -- '-----BEGIN CERTIFICATE-----' "$D/t1.tls.crt"

# -- the stanza on stdout -------------------------------------------------------
s=$tmp/stanza
check grep -qx '\[peer t1\]' "$s"
check grep -qx 'tls_cert = keys/t1.tls.crt' "$s"
check grep -qx 'sign_pub = keys/t1.sign.pub' "$s"
check grep -q '^# interlist peer stanza for t1 ' "$s"
check grep -q 'url = tls+tcp://' "$s"
# Nothing but the stanza on stdout: comments, the header, key = value lines.
check test "$(grep -cvE '^(#|;|\[peer t1\]$|[a-z_]+ = )' "$s")" = 0

# The fingerprints in the stanza are what `fingerprint` prints for the files.
fpr_re='^SHA256(:[0-9A-F]{2}){32}$'
expect 0 "$ctl" fingerprint "$D/t1.tls.crt"
crt_fpr=$(cat "$tmp/out")
check test "$(wc -l <"$tmp/out")" = 1
check grep -qE "$fpr_re" "$tmp/out"
expect 0 "$ctl" fingerprint "$D/t1.sign.pub"
pub_fpr=$(cat "$tmp/out")
check grep -qE "$fpr_re" "$tmp/out"
check grep -qxF "#   tls_cert  $crt_fpr" "$s"
check grep -qxF "#   sign_pub  $pub_fpr" "$s"
check test "$crt_fpr" != "$pub_fpr"
# A private key's fingerprint is its public half's.
expect 0 "$ctl" fingerprint "$D/t1.sign.key"
check test "$(cat "$tmp/out")" = "$pub_fpr"

# -- refusals ------------------------------------------------------------------
sum_before=$(cat "$D"/* | cksum)
expect 73 "$ctl" init --id t1 --dir "$D"
check grep -q 'already exists' "$tmp/err"
check test ! -s "$tmp/out"
check test "$(cat "$D"/* | cksum)" = "$sum_before"
# One of the four present is enough to refuse, and then nothing is written.
: >"$D/t2.tls.crt"
expect 73 "$ctl" init --id t2 --dir "$D"
check test ! -e "$D/t2.sign.key"
check test ! -e "$D/t2.tls.key"
check test "$(ls -A "$D" | wc -l)" = 5
rm -f "$D/t2.tls.crt"

for bad in T1 a_b a.b ../x "" abcdefghijklmnopqrstuvwxyz0123456; do
	expect 64 "$ctl" init --id "$bad" --dir "$D"
done
check test "$(ls -A "$D" | wc -l)" = 4
expect 64 "$ctl" init --id t3
expect 64 "$ctl" init --dir "$D"
expect 64 "$ctl" init --id
expect 64 "$ctl" init --id t3 --dir "$D" extra
check test ! -e "$D/t3.sign.key"
# --opt=value works too; a 32-character id is valid.
expect 0 "$ctl" init --id=abcdefghijklmnopqrstuvwxyz-01234 --dir="$D"

# -- fingerprint errors ----------------------------------------------------------
expect 66 "$ctl" fingerprint "$tmp/missing.crt"
expect 66 "$ctl" fingerprint "$tmp"
echo "not a key" >"$tmp/junk.pem"
expect 65 "$ctl" fingerprint "$tmp/junk.pem"
expect 64 "$ctl" fingerprint
expect 64 "$ctl" fingerprint a b

# -- check: a config with our keys and a pasted peer stanza ---------------------
expect 0 "$ctl" init --id alpha --dir "$D"
{
	printf '[relay]\nid = alpha\ntls_cert = keys/alpha.tls.crt\n'
	printf 'tls_key = keys/alpha.tls.key\nsign_key = keys/alpha.sign.key\ndata_dir = data\n\n'
	cat "$s"
	printf '\n[list incidents]\n'
} >"$tmp/il.conf"
expect 0 "$ctl" -c "$tmp/il.conf" check
check grep -qxF "$tmp/il.conf: ok" "$tmp/out"
expect 0 "$ctl" check -c "$tmp/il.conf"
chmod 640 "$D/alpha.tls.key"
expect 78 "$ctl" -c "$tmp/il.conf" check
check grep -q 'chmod 600' "$tmp/err"
chmod 600 "$D/alpha.tls.key"
rm "$D/t1.sign.pub"
expect 78 "$ctl" -c "$tmp/il.conf" check
check grep -q 't1.sign.pub' "$tmp/err"
expect 78 "$ctl" -c "$tmp/missing.conf" check
expect 64 "$ctl" check -x

echo "test_ctl_keys.sh: $checks checks, $failures failed" >&2
[ "$failures" -eq 0 ]
