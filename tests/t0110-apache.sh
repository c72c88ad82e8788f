#!/bin/bash
# t0110-apache.sh - imgsvc under Apache + mod_fcgid (FcgidMaxProcesses 1),
# configured with the shipped apache-conf/imgsvc.conf, against moto with
# signature checking on: the shared cases of e2e_cases.sh.

. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/e2e_cases.sh"

require_tools apache2
[ -f /usr/lib/apache2/modules/mod_fcgid.so ] ||
	skip_all "mod_fcgid not installed (Debian package: libapache2-mod-fcgid)"

SERVER=apache
e2e_setup
start_apache "$T/imgsvc.ini"
e2e_cases

start_apache "$T/raw.ini"
e2e_raw_cases
