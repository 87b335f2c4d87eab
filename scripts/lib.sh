# shellcheck shell=bash disable=SC2034
# scripts/lib.sh — shell helpers shared by scripts/test, scripts/demo and
# scripts/bench. Source it from bash; it sets IL_ROOT (the repository root)
# and changes no shell options of the caller.
#
#   il_say MSG...                 banner line on stdout
#   il_warn MSG...                message on stderr
#   il_missing_debs PKG...        print the Debian packages not installed
#   il_ensure_debs PKG...         install the missing ones (apt-get update
#                                 first, only if something is missing);
#                                 returns 1 if they can't be installed
#   il_meson_setup DIR [OPT...]   configure a meson build dir, reconfiguring
#                                 an existing one (wiping it if that fails);
#                                 set IL_WANT_CC_ID=clang to wipe a dir that
#                                 was configured with another compiler
#   IL_BASE_DEBS                  packages every build needs
#   IL_FUZZ_DEBS                  extra packages for the libFuzzer build

IL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

IL_BASE_DEBS=(build-essential meson ninja-build pkg-config cmake
	libnng-dev libuv1-dev libssl-dev libsqlite3-dev libcurl4-openssl-dev
	libsystemd-dev python3 python3-aiosmtpd sqlite3)
IL_FUZZ_DEBS=(clang libclang-rt-14-dev)

il_say() { printf '\n==> %s\n' "$*"; }
il_warn() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

il_missing_debs() {
	local p
	for p in "$@"; do
		if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
			printf '%s\n' "$p"
		fi
	done
}

il_ensure_debs() {
	if ! command -v dpkg-query >/dev/null 2>&1; then
		il_warn "not a Debian system: not checking packages ($*)"
		return 0
	fi
	local missing
	missing="$(il_missing_debs "$@")"
	[[ -z "$missing" ]] && return 0
	# shellcheck disable=SC2086 # one package a word
	set -- $missing
	if [[ "$(id -u)" != 0 ]]; then
		il_warn "missing Debian packages: $*"
		il_warn "run as root, or install them first: sudo apt-get install --no-install-recommends $*"
		return 1
	fi
	il_say "installing Debian packages: $*"
	local apt=(apt-get -q -o DPkg::Lock::Timeout=300)
	if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" update; then
		il_warn "apt-get update failed"
		return 1
	fi
	if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "$@"; then
		il_warn "apt-get install failed: $*"
		return 1
	fi
	missing="$(il_missing_debs "$@")"
	if [[ -n "$missing" ]]; then
		il_warn "still missing after apt-get install: ${missing//$'\n'/ }"
		return 1
	fi
}

il_meson_setup() {
	local dir="$1"
	shift
	if [[ -f "$dir/meson-private/coredata.dat" ]]; then
		local intro="$dir/meson-info/intro-compilers.json"
		if [[ -n "${IL_WANT_CC_ID:-}" && -f "$intro" ]] &&
			! grep -Eq "\"id\": *\"${IL_WANT_CC_ID}\"" "$intro"; then
			il_warn "$dir was configured with another compiler: wiping it"
			meson setup --wipe "$dir" "$@" && return 0
		else
			meson setup --reconfigure "$dir" "$@" && return 0
			il_warn "reconfiguring $dir failed: wiping it"
			meson setup --wipe "$dir" "$@" && return 0
		fi
		il_warn "wiping $dir failed: removing it"
	elif [[ -e "$dir" ]]; then
		meson setup "$dir" "$@" && return 0
		il_warn "configuring $dir failed: removing it and starting over"
	else
		meson setup "$dir" "$@"
		return
	fi
	rm -rf -- "$dir"
	meson setup "$dir" "$@"
}
