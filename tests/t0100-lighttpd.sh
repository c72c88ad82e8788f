#!/bin/bash
# t0100-lighttpd.sh - imgsvc spawned by lighttpd (bin-path), configured with
# the shipped lighttpd-conf/imgsvc.conf, one worker (max-procs 1), against
# moto with signature checking on: the shared cases of e2e_cases.sh.

. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/e2e_cases.sh"

SERVER=lighttpd
e2e_setup
start_lighttpd "$T/imgsvc.ini" 1
e2e_cases

start_lighttpd "$T/raw.ini" 1
e2e_raw_cases
