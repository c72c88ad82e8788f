#!/usr/bin/env bash
# t0010-install.sh - `make install` puts the binary, the sample config and
# the web-server snippets where the configured directories say, and the
# installed binary checks the installed sample config; a bad config stops
# start-up with a message naming file, section and key.
. "$(dirname "$0")/lib.sh"
require_imgsvc

dest=$T/dest
make -C "$builddir" install DESTDIR="$dest" >"$T/install.log" 2>&1
check "make install DESTDIR=... succeeds" test $? = 0
eval "$(make -s -C "$builddir" print-dirs)"
bin=$dest$bindir/imgsvc
sample=$dest$sysconfdir/imgsvc.ini.sample
check "binary installed in bindir ($bindir)" test -x "$bin"
check "sample config installed in sysconfdir ($sysconfdir)" test -f "$sample"
check "Apache snippet installed under datadir" test -f "$dest$datadir/imgsvc/apache-conf/imgsvc.conf"
check "lighttpd snippet installed under datadir" test -f "$dest$datadir/imgsvc/lighttpd-conf/imgsvc.conf"
check "state directory created under localstatedir ($localstatedir/lib/imgsvc)" \
	test -d "$dest$localstatedir/lib/imgsvc"
check "imgsvc-usage installed beside imgsvc" test -x "$dest$bindir/imgsvc-usage"
# The sample's state_file is /var/lib/imgsvc/state: -t opens it as a worker
# would, so here it points into the installed state directory.
sed "s|^state_file = .*|state_file = $dest$localstatedir/lib/imgsvc/state|" "$sample" >"$T/sample.ini"
check "installed sample config passes imgsvc -t (state_file in the installed state directory)" \
	"$bin" -t -c "$T/sample.ini"
sed "s|^state_file = .*|state_file = $T/no-such-dir/state|" "$sample" >"$T/nodir.ini"
out=$("$bin" -t -c "$T/nodir.ini" 2>&1)
rc=$?
check "a state_file in a missing directory: imgsvc -t fails naming it ($out)" \
	sh -c "[ $rc != 0 ] && printf '%s' \"\$1\" | grep -q 'no-such-dir: No such file or directory'" _ "$out"
check "-V prints the version" sh -c "'$bin' -V | grep -q '^imgsvc '"
check "the default config path is under sysconfdir" sh -c "'$bin' -h | grep -qF '$sysconfdir/imgsvc/imgsvc.ini'"

# IMGSVC_CONFIG is read when -c is absent.
check "IMGSVC_CONFIG names the file" env IMGSVC_CONFIG="$T/sample.ini" "$bin" -t

sed 's/^timeout_ms = 10000/timeout_ms = soon/' "$sample" >"$T/bad.ini"
out=$("$bin" -t -c "$T/bad.ini" 2>&1)
rc=$?
check "bad value: start-up fails" test $rc != 0
check "  message names file, section, key and problem" \
	sh -c "printf '%s' \"\$1\" | grep -qF \"$T/bad.ini: [s3] timeout_ms: expected a whole number\"" _ "$out"
printf '[s3]\nbucket = b\n[bogus]\nx = 1\n[key a]\nkey = 12345678\n' >"$T/bad2.ini"
out=$("$bin" -t -c "$T/bad2.ini" 2>&1)
check "unknown section: start-up fails naming it" \
	sh -c "printf '%s' \"\$1\" | grep -qF '[bogus]: unknown section'" _ "$out"
out=$("$bin" -t -c "$T/missing.ini" 2>&1)
check "missing file: start-up fails naming it" \
	sh -c "printf '%s' \"\$1\" | grep -qF '$T/missing.ini: cannot open'" _ "$out"
# iniparser would merge a second [key web] into the first and let its key
# replace the first one's: refused, naming both lines.
n=$(wc -l <"$sample")
web=$(grep -n '^\[key web\]' "$sample" | cut -d: -f1)
{ cat "$sample"; printf '\n[Key Web]\nkey = "another-long-random-string"\n'; } >"$T/twice.ini"
out=$("$bin" -t -c "$T/twice.ini" 2>&1)
rc=$?
check "a repeated [key web] section: imgsvc -t fails" test $rc != 0
check "  naming both lines ($((n + 2)) and $web)" \
	sh -c "printf '%s' \"\$1\" | grep -qF '$T/twice.ini: [key web]: line $((n + 2)) repeats the section of line $web'" _ "$out"
# The sample ends in [key mobile-app] with "enabled = no".
enabled=$(grep -n '^enabled' "$sample" | tail -1 | cut -d: -f1)
{ cat "$sample"; printf 'ENABLED=yes\n'; } >"$T/twicekey.ini"
out=$("$bin" -t -c "$T/twicekey.ini" 2>&1)
rc=$?
check "a key repeated in a section: imgsvc -t fails" test $rc != 0
check "  naming both lines ($((n + 1)) and $enabled)" \
	sh -c "printf '%s' \"\$1\" | grep -qF '$T/twicekey.ini: [key mobile-app] enabled: line $((n + 1)) repeats line $enabled'" _ "$out"
out=$("$bin" -t -c "$T" 2>&1)
rc=$?
check "-c DIRECTORY: imgsvc -t fails saying it is a directory" \
	sh -c "test $rc != 0 && printf '%s' \"\$1\" | grep -qF '$T: is a directory'" _ "$out"
out=$("$bin" -c "$sample" </dev/null 2>&1)
check "run outside FastCGI: refuses with a hint" \
	sh -c "printf '%s' \"\$1\" | grep -qF 'not a FastCGI socket'" _ "$out"
