#!/bin/bash
# demo.sh - run imgsvc locally: moto as S3, lighttpd on 127.0.0.1:8080.
#
#   bash tests/demo.sh            (DEMO_PORT=8081 bash tests/demo.sh for another port)
#
# Stops at once, naming pip install 'moto[server]', when there is no
# moto_server. Installs the Debian packages it needs (as tests/ci.sh does),
# builds imgsvc, starts moto_server with SigV4 checking on (on a free
# loopback port),
# uploads the sample photos of tests/data/images, writes an imgsvc config,
# and starts lighttpd with the project's lighttpd-conf/imgsvc.conf, mount
# /dev. Prints curl examples, then stays in the foreground until Ctrl-C
# and stops everything it started.

cd "$(dirname "$0")/.." || exit 1
DEMO_PORT=${DEMO_PORT:-8080}

# moto is no Debian package: without it the demo cannot start, so say so
# before installing or building anything (where tests/lib.sh looks too).
if ! command -v moto_server >/dev/null 2>&1 && [ ! -x "$HOME/.pyenv/shims/moto_server" ]; then
	echo "demo: moto_server not found; install it with pip install 'moto[server]'" \
		"(looked on PATH and in ~/.pyenv/shims; with Debian's own python3, in a venv: see README)" >&2
	exit 1
fi

bash tests/install-deps.sh || exit 1
if [ ! -x ./imgsvc ]; then
	mkdir -p m4
	{ [ -x ./configure ] || autoreconf -fi; } && { [ -f Makefile ] || ./configure; } || {
		echo "demo: configure failed" >&2
		exit 1
	}
fi
make -j2 imgsvc || { echo "demo: build failed" >&2; exit 1; }

if (exec 3<>"/dev/tcp/127.0.0.1/$DEMO_PORT") 2>/dev/null; then
	echo "demo: 127.0.0.1:$DEMO_PORT is in use; try DEMO_PORT=8081 bash tests/demo.sh" >&2
	exit 1
fi

# The test library does the work: moto, fixtures, config, lighttpd, and the
# clean-up on exit. This is no test: no TAP plan at the end.
. tests/lib.sh
test_count=-1
KEY_WEB=demo-key

echo "demo: starting moto_server (S3, signature checking on)..."
start_moto
upload_fixtures
write_config "$T/imgsvc.ini"
LIGHTTPD_PORT=$DEMO_PORT start_lighttpd "$T/imgsvc.ini" 2

cat <<EOF

imgsvc is running: lighttpd on http://127.0.0.1:$DEMO_PORT$MOUNT -> imgsvc -> moto on $MOTO_URL
  config:       $T/imgsvc.ini
  request log:  $SERVER_LOG
  bucket:       s3://$BUCKET/$PREFIX  ($(cd "$IMAGES" && echo *.jpg *.png))

Try:
  curl -H 'X-API-Key: demo-key' http://127.0.0.1:$DEMO_PORT$MOUNT/photo2mp.jpg -o out.jpg
  curl -H 'X-API-Key: demo-key' http://127.0.0.1:$DEMO_PORT$MOUNT/photo12mp.jpg -o wide.jpg   # 4000 px wide, served at 2000
  curl -I -H 'X-API-Key: demo-key' http://127.0.0.1:$DEMO_PORT$MOUNT/photo-dune.png
  curl -i http://127.0.0.1:$DEMO_PORT$MOUNT/photo2mp.jpg                                     # 403, no key
  curl -i -H 'X-API-Key: demo-key' http://127.0.0.1:$DEMO_PORT$MOUNT/nothing-here.jpg         # 404
  curl -i http://127.0.0.1:$DEMO_PORT$MOUNT/_imgsvc/health
  # a 400 px WebP: X-Cache: miss the first time, hit the second
  curl -s -D - -o photo-400.webp -H 'X-API-Key: demo-key' 'http://127.0.0.1:$DEMO_PORT$MOUNT/photo12mp.jpg?w=400&fm=webp'
  curl -s -D - -o photo-400.webp -H 'X-API-Key: demo-key' 'http://127.0.0.1:$DEMO_PORT$MOUNT/photo12mp.jpg?w=400&fm=webp'
  curl -H 'X-API-Key: demo-key' 'http://127.0.0.1:$DEMO_PORT$MOUNT/photo2mp.jpg?w=300&h=300&fit=cover&rotate=90' -o thumb.jpg
  gm identify out.jpg wide.jpg photo-400.webp thumb.jpg
  tail -f $SERVER_LOG

Upload more (signed with the demo's IAM key):
  AWS_ACCESS_KEY_ID=$S3_KEY_ID AWS_SECRET_ACCESS_KEY=$S3_SECRET AWS_DEFAULT_REGION=us-east-1 \\
    aws --endpoint-url $MOTO_URL s3 cp my.jpg s3://$BUCKET/${PREFIX}my.jpg

Ctrl-C stops everything.
EOF

while kill -0 "$LIGHTTPD_PID" 2>/dev/null && kill -0 "$MOTO_PID" 2>/dev/null; do
	sleep 1
done
echo "demo: a server stopped unexpectedly; see $T (kept? set IMGSVC_TEST_KEEP=1)" >&2
exit 1
