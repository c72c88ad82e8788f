#!/bin/bash
# fresh-machine.sh - the README's steps on a clean Debian 12 root, as root.
#
#   bash tests/fresh-machine.sh
#
# Makes a Debian 12 (bookworm) root with debootstrap --variant=minbase in a
# temporary directory under ${TMPDIR:-/var/tmp} (it needs about 4 GB, on a
# file system allowing devices and executables), from the mirror this
# machine's apt uses, with bookworm-updates and the security archive as an
# installed Debian 12 has them. A clone of this repository's committed HEAD
# goes in (what is not committed is not tested). Then, inside the root
# (chroot, /proc, /dev and /dev/pts mounted, /etc/resolv.conf copied):
#
#   deps        bash tests/install-deps.sh (the README's package step)
#   autoreconf  mkdir -p m4 && autoreconf -fi
#   configure   ./configure --enable-werror
#   make        make -j$(nproc)
#   unit        make tests/unit, then tests/unit tests/data: TAP, no "not ok"
#   config      the sample's state directory, ./imgsvc -t -c etc/imgsvc.ini.sample
#   health      imgsvc under spawn-fcgi (a Unix socket) behind lighttpd with
#               the shipped lighttpd-conf/imgsvc.conf rendered as tests/lib.sh
#               does, S3 pointed at a closed loopback port (the health path
#               never asks S3): GET /dev/_imgsvc/health answers 200
#               {"status":"ok"}
#   demo        bash tests/demo.sh with no moto in the root: must stop at
#               once, non-zero, naming pip install 'moto[server]'
#   ci          only with FRESH_CI=1: bash tests/ci.sh (without its own
#               fresh-machine step), no test failed
#   leftovers   no process is left running in the root
#
# Each step prints one line: name, seconds, ok or FAILED; the first failure
# stops the run and shows the end of its output (all of it is in
# DIR.log, kept on failure). On exit, however it ends, every process whose
# root is the new root is stopped, everything mounted below it is
# unmounted (umount -l only as a last resort), and the directory is removed
# only once nothing is mounted below it any more. Exit status 0 when every
# step passed and the clean-up succeeded.
#
# Environment:
#   FRESH_KEEP=1      keep the directory (unmounted) and the log
#   FRESH_MIRROR=URL  the Debian mirror (default: the one apt uses here,
#                     else http://deb.debian.org/debian)
#   FRESH_CACHE=DIR   opt-in, not fresh: keep the downloaded .debs of the
#                     base system in DIR/bookworm-minbase.tgz
#                     (debootstrap --make-tarball) and install from there
#                     next time (--unpack-tarball); the default downloads
#                     everything anew
#   FRESH_VERBOSE=1   show every step's output as it runs
#   FRESH_CI=1        also run the README's test command, bash tests/ci.sh
#                     (step ci: no test may fail; those needing moto skip)
#   FRESH_BREAK=1     a test of the clean-up itself: once the root is
#                     mounted, leave a process running in it and fail

set -u
LC_ALL=C.UTF-8
export LC_ALL

SRC=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel 2>/dev/null) || {
	echo "fresh: $(dirname "$0")/.. is not a git checkout" >&2
	exit 1
}
NEED_MB=4096
SUITE=bookworm

say() { echo "fresh: $*"; }
die() {
	say "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and mount need it)"
for t in debootstrap chroot git mount umount findmnt df; do
	command -v "$t" >/dev/null 2>&1 || die "$t not found (Debian: apt-get install debootstrap)"
done

# apt_uri SUITE: the first URI this machine's apt uses for SUITE (one-line
# .list files and deb822 .sources files alike; disabled entries skipped).
apt_uri() {
	local suite=$1 f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk -v s="$suite" '$1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
			if ($(i + 1) == s) { print $i; exit }
		}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# One stanza per paragraph; keys are case-insensitive.
		awk -v s="$suite" 'BEGIN { RS = ""; FS = "\n" }
		{
			types = uris = suites = ""; enabled = "yes"
			for (i = 1; i <= NF; i++) {
				line = $i
				if (line ~ /^#/) continue
				k = tolower(line); sub(/:.*/, "", k)
				v = line; sub(/^[^:]*:[ \t]*/, "", v)
				if (k == "types") types = v
				else if (k == "uris") uris = v
				else if (k == "suites") suites = v
				else if (k == "enabled") enabled = tolower(v)
			}
			if (enabled == "no" || (" " types " ") !~ / deb /) next
			if ((" " suites " ") ~ (" " s " ")) { split(uris, u, " "); print u[1]; exit }
		}' "$f"
	done | head -n 1
}

MIRROR=${FRESH_MIRROR:-$(apt_uri "$SUITE")}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=$(apt_uri "$SUITE-security")
SECURITY=${SECURITY:-http://deb.debian.org/debian-security}

# --- where: enough room, devices and executables allowed ---------------------------
BASE=${TMPDIR:-/var/tmp}
[ -d "$BASE" ] || die "$BASE does not exist"
avail=$(df -Pk "$BASE" | awk 'NR == 2 { print int($4 / 1024) }')
fstype=$(findmnt -n -o FSTYPE -T "$BASE")
opts=$(findmnt -n -o OPTIONS -T "$BASE")
[ "${avail:-0}" -ge "$NEED_MB" ] ||
	die "$BASE ($fstype) has ${avail:-?} MB free, $NEED_MB needed: set TMPDIR to a bigger file system"
case ,$opts, in
*,nodev,* | *,noexec,*) die "$BASE is mounted $opts: set TMPDIR to a file system allowing devices and executables" ;;
esac

ROOT=$(mktemp -d "$BASE/imgsvc-fresh.XXXXXX") || die "mktemp -d in $BASE failed"
# Processes are recognised by /proc/PID/root, which shows the resolved path.
ROOT=$(realpath "$ROOT")
chmod 755 "$ROOT"
LOG=$ROOT.log
: >"$LOG"
REPO=/root/imgsvc

# --- steps ---------------------------------------------------------------------
STEPS=()
STEP_WHAT=
STEP_PID='' STEP_NAME='' STEP_T0=''
T_START=$EPOCHREALTIME
FAILED=
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# step NAME COMMAND...: run COMMAND (its output in $LOG), time it, print a
# line; on failure show the end of its output and stop (the exit trap
# cleans up). STEP_WHAT, when set, says what it does instead of COMMAND.
step() {
	local name=$1 t0 rc mark what=$STEP_WHAT
	shift
	STEP_WHAT=
	say "== $name: ${what:-$*}"
	mark=$(wc -l <"$LOG")
	printf '\n===== %s: %s\n' "$name" "$*" >>"$LOG"
	t0=$EPOCHREALTIME
	# In the background and waited for: a TERM or INT to this script is
	# handled at once (the trap stops the step), not when the step ends.
	if [ "${FRESH_VERBOSE:-}" = 1 ]; then
		(
			"$@" 2>&1 | tee -a "$LOG"
			exit "${PIPESTATUS[0]}"
		) &
	else
		"$@" >>"$LOG" 2>&1 &
	fi
	STEP_PID=$! STEP_NAME=$name STEP_T0=$t0
	wait "$STEP_PID"
	rc=$?
	STEP_PID=
	local line
	line=$(printf '%-12s %7s s  %s' "$name" "$(secs "$t0" "$EPOCHREALTIME")" \
		"$([ "$rc" = 0 ] && echo ok || echo "FAILED (status $rc)")")
	STEPS+=("$line")
	# The last line of its output says what it found.
	[ "$rc" = 0 ] && tail -n 1 "$LOG" | cut -c1-110 | sed 's/^/fresh:     /'
	say "$line"
	if [ "$rc" != 0 ]; then
		FAILED=$name
		if [ "${FRESH_VERBOSE:-}" != 1 ]; then
			echo "---- last 40 lines of $name's output:"
			tail -n +"$((mark + 1))" "$LOG" | tail -n 40
			echo "----"
		fi
		exit 1
	fi
}

# in_root COMMAND: a shell command in the clone inside the root, with a
# clean environment (nothing of this machine's PATH, TMPDIR, pyenv...).
in_root() {
	chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb LC_ALL=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		/bin/bash -c "cd $REPO && $1"
}

# --- clean-up --------------------------------------------------------------------
# root_pids: processes whose root directory is the new root (or below it).
root_pids() {
	local d r
	for d in /proc/[0-9]*; do
		r=$(readlink "$d/root" 2>/dev/null) || continue
		case $r in "$ROOT" | "$ROOT"/*) echo "${d#/proc/}" ;; esac
	done
}

# mounts_below: mount points at or below the root, in mount order (the
# recorded ones and any left by an interrupted debootstrap alike).
mounts_below() {
	awk -v r="$ROOT" '{
		m = $5; gsub(/\\040/, " ", m)
		if (m == r || index(m, r "/") == 1) print m
	}' /proc/self/mountinfo
}

stop_root_processes() {
	local pids p
	pids=$(root_pids)
	[ -n "$pids" ] || return 0
	say "stopping processes left in the root: $(for p in $pids; do printf '%s(%s) ' "$p" "$(cat "/proc/$p/comm" 2>/dev/null)"; done)"
	kill -TERM $pids 2>/dev/null
	for _ in $(seq 50); do
		[ -n "$(root_pids)" ] || return 0
		sleep 0.1
	done
	pids=$(root_pids)
	[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
	for _ in $(seq 50); do
		[ -n "$(root_pids)" ] || return 0
		sleep 0.1
	done
	say "processes still in the root: $(root_pids)"
	return 1
}

unmount_all() {
	local m tries
	for tries in 1 2 3; do
		# Deepest (latest) first.
		for m in $(mounts_below | tac); do
			umount "$m" 2>>"$LOG" || [ "$tries" != 3 ] || {
				say "umount $m failed; detaching it (umount -l)"
				umount -l "$m"
			}
		done
		[ -z "$(mounts_below)" ] && return 0
		sleep 1
	done
	return 1
}

# descendants PID: the processes below PID, children first.
descendants() {
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$c"
		descendants "$c"
	done
}

cleanup() {
	local rc=$? ok=1 pids
	trap - EXIT INT TERM
	if [ -n "$STEP_PID" ]; then
		# Interrupted inside a step (e.g. debootstrap, on this side).
		pids="$STEP_PID $(descendants "$STEP_PID")"
		say "interrupted: stopping the running step ($(echo $pids))"
		kill -TERM $pids 2>/dev/null
		wait "$STEP_PID" 2>/dev/null
		FAILED=$STEP_NAME
		STEPS+=("$(printf '%-12s %7s s  %s' "$STEP_NAME" "$(secs "$STEP_T0" "$EPOCHREALTIME")" "FAILED (interrupted)")")
	fi
	stop_root_processes || ok=
	if ! unmount_all; then
		ok=
		say "still mounted below $ROOT:"
		mounts_below | sed 's/^/    /'
	fi
	if [ -n "$(mounts_below)" ]; then
		# Never remove through a mount (host /dev, /proc).
		say "NOT removing $ROOT: something is still mounted below it"
		ok=
	elif [ "${FRESH_KEEP:-}" = 1 ]; then
		say "kept $ROOT (nothing mounted; chroot $ROOT bash to look) and $LOG"
	else
		rm -rf --one-file-system "$ROOT" || ok=
		[ -e "$ROOT" ] && { say "could not remove $ROOT"; ok=; }
	fi
	echo
	say "summary ($([ -n "$FAILED" ] && echo "FAILED at $FAILED" || { [ "$rc" = 0 ] && echo all ok || echo "ended with status $rc"; }))"
	local line
	for line in "${STEPS[@]+"${STEPS[@]}"}"; do echo "  $line"; done
	printf '  %-12s %7s s\n' total "$(secs "$T_START" "$EPOCHREALTIME")"
	[ -z "$ok" ] && { say "clean-up FAILED"; rc=1; }
	if [ "$rc" = 0 ] && [ "${FRESH_KEEP:-}" != 1 ]; then
		rm -f "$LOG"
	else
		say "log: $LOG"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. the root -------------------------------------------------------------------
say "root $ROOT, mirror $MIRROR, security $SECURITY"
say "testing $(git -C "$SRC" log -1 --format='%h %s' HEAD | cut -c1-90)"
[ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] ||
	say "note: $SRC has uncommitted changes; only the committed HEAD is tested"

debootstrap_root() {
	local variant=minbase
	if [ -n "${FRESH_CACHE:-}" ]; then
		local tarball=$FRESH_CACHE/$SUITE-$variant.tgz
		mkdir -p "$FRESH_CACHE" || return 1
		if [ ! -s "$tarball" ]; then
			echo "FRESH_CACHE: downloading into $tarball"
			debootstrap --variant=$variant --make-tarball="$tarball.new" "$SUITE" \
				"$ROOT/.make-tarball" "$MIRROR" && mv "$tarball.new" "$tarball" || return 1
			rm -rf --one-file-system "$ROOT/.make-tarball"
		fi
		echo "FRESH_CACHE: installing from $tarball (not a fresh download)"
		debootstrap --variant=$variant --unpack-tarball="$tarball" "$SUITE" "$ROOT" "$MIRROR"
	else
		debootstrap --variant=$variant "$SUITE" "$ROOT" "$MIRROR"
	fi
}
step debootstrap debootstrap_root

# What an installed Debian 12 has: the release, its updates, security.
mount_root() {
	cat >"$ROOT/etc/apt/sources.list" <<EOF || return 1
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
	rm -f "$ROOT/etc/resolv.conf"
	cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" || return 1
	mount -t proc proc "$ROOT/proc" || return 1
	mount --bind /dev "$ROOT/dev" || return 1
	mount --bind /dev/pts "$ROOT/dev/pts" || return 1
	mounts_below
}
step mount mount_root

if [ "${FRESH_BREAK:-}" = 1 ]; then
	forced_failure() {
		# A stray daemon in the root: the clean-up must stop it to unmount.
		chroot "$ROOT" setsid sleep 600 </dev/null >/dev/null 2>&1 &
		sleep 0.5
		echo "left running in the root: $(root_pids)"
		return 1
	}
	step break forced_failure
fi

clone_repo() {
	git clone -q --no-checkout "$SRC" "$ROOT$REPO" &&
		git -C "$ROOT$REPO" checkout -q --detach "$(git -C "$SRC" rev-parse HEAD)" &&
		git -C "$ROOT$REPO" log -1 --format='%H %s'
}
step clone clone_repo

# --- 2. the README's steps, inside ---------------------------------------------------
step deps in_root 'bash tests/install-deps.sh'
step autoreconf in_root 'mkdir -p m4 && autoreconf -fi'
step configure in_root './configure --enable-werror'
step make in_root "make -j$(nproc)"

unit_tests() {
	in_root 'make tests/unit && tests/unit tests/data >/tmp/unit.tap' || return 1
	local tap=$ROOT/tmp/unit.tap n
	grep -E '^(not )?ok ' "$tap" | tail -n 3
	n=$(grep -c '^ok ' "$tap")
	grep '^not ok' "$tap" && return 1
	grep -qE '^1\.\.[0-9]+' "$tap" || { echo "no TAP plan"; return 1; }
	[ "$n" -gt 0 ] || { echo "no test passed"; return 1; }
	echo "$n ok, no \"not ok\""
}
step unit unit_tests
step config in_root 'install -d /var/lib/imgsvc && ./imgsvc -t -c etc/imgsvc.ini.sample'

# spawn-fcgi and lighttpd started by tests/lib.sh (process groups, stopped
# by its exit trap), which renders the shipped snippet's spawn-fcgi block.
# The credentials are made up and S3 is a port nothing listens on.
# shellcheck disable=SC2016 # expanded inside the root
health_request='
. tests/lib.sh
test_count=-1
S3_KEY_ID=AKIDFRESHMACHINE0000 S3_SECRET=fresh-machine-not-a-secret
MOTO_URL=http://127.0.0.1:$(free_port)
write_config "$T/imgsvc.ini"
start_spawn_fcgi "$T/imgsvc.ini"
LIGHTTPD_EXTERNAL=$FCGI_SOCKET start_lighttpd "$T/imgsvc.ini"
echo "imgsvc on $FCGI_SOCKET (spawn-fcgi), lighttpd on 127.0.0.1:$HTTP_PORT, S3 at $MOTO_URL (closed)"
http GET "$BASE/_imgsvc/health"
echo "GET $BASE/_imgsvc/health: $HTTP_STATUS $(cat "$T/resp.body")"
status_is 200 && [ "$(cat "$T/resp.body")" = "{\"status\":\"ok\"}" ]
'
STEP_WHAT="GET /dev/_imgsvc/health: lighttpd -> spawn-fcgi socket -> imgsvc (tests/lib.sh)"
step health in_root "$health_request"

demo_without_moto() {
	local out rc
	out=$(in_root 'timeout 300 bash tests/demo.sh' 2>&1)
	rc=$?
	printf '%s\n' "$out" | tail -n 5
	[ "$rc" != 0 ] && [ "$rc" != 124 ] || { echo "demo.sh: status $rc, expected an early failure"; return 1; }
	printf '%s\n' "$out" | grep -qF "moto_server not found" &&
		printf '%s\n' "$out" | grep -qF "pip install 'moto[server]'" ||
		{ echo "demo.sh did not say: moto_server not found ... pip install 'moto[server]'"; return 1; }
	echo "demo.sh stopped (status $rc) naming pip install 'moto[server]'"
}
STEP_WHAT="bash tests/demo.sh (no moto here): stops early, naming pip install 'moto[server]'"
step demo demo_without_moto

# Opt-in: the README's test command, the whole suite (tests needing moto
# skip: there is none in the root).
run_ci() {
	local summary
	in_root 'CI_FRESH=no bash tests/ci.sh' || true
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$LOG" | tail -n 1)
	echo "ci.sh: ${summary:-no summary line}"
	case $summary in *" 0 failed,"*) return 0 ;; esac
	return 1
}
[ "${FRESH_CI:-}" = 1 ] && step ci run_ci

nothing_left() {
	local pids p
	pids=$(root_pids)
	[ -z "$pids" ] && { echo "none"; return 0; }
	for p in $pids; do echo "left running: $p $(tr '\0' ' ' <"/proc/$p/cmdline")"; done
	return 1
}
step leftovers nothing_left

du -smx "$ROOT" 2>/dev/null | awk '{ print "fresh: the root took " $1 " MB" }'
exit 0
