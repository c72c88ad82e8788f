#!/bin/bash
# t0140-sts.sh - temporary credentials: an IAM role assumed with moto's STS
# (AssumeRole), its session token signed into every S3 request. The
# credentials come once from the config file ([s3] session_token) and once
# from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
# AWS_SESSION_TOKEN, passed on by lighttpd); a wrong or missing token must
# fail with 502.

. "$(dirname "$0")/lib.sh"

require_imgsvc
require_tools moto_server aws curl lighttpd

# Six free calls: the user, its key, its policy (S3 and sts:AssumeRole),
# the role (trusting that user by ARN: moto checks the trust policy), the
# role's policy, the bucket.
user_policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","sts:AssumeRole"],"Resource":"*"}]}'
start_moto 6 "$user_policy"
export AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap
aws_raw iam create-role --role-name imgsvc-reader --assume-role-policy-document \
	'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"'"$(json_get "$T/iam-user.json" 'd["User"]["Arn"]')"'"},"Action":"sts:AssumeRole"}]}' \
	>"$T/role.json" || bail_out "iam create-role failed"
aws_raw iam put-role-policy --role-name imgsvc-reader --policy-name s3read --policy-document \
	'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":"*"}]}' ||
	bail_out "iam put-role-policy failed"
moto_create_bucket
upload_fixtures photo2mp.jpg photo-dune.png

# Signed with the user's key (the free calls are used up).
aws_s3 sts assume-role --role-arn "$(json_get "$T/role.json" 'd["Role"]["Arn"]')" \
	--role-session-name t0140 >"$T/sts.json" || bail_out "sts assume-role failed"
TMP_ID=$(json_get "$T/sts.json" 'd["Credentials"]["AccessKeyId"]')
TMP_SECRET=$(json_get "$T/sts.json" 'd["Credentials"]["SecretAccessKey"]')
TMP_TOKEN=$(json_get "$T/sts.json" 'd["Credentials"]["SessionToken"]')
check "assume-role gave a temporary key with a session token" \
	test -n "$TMP_ID" -a -n "$TMP_SECRET" -a -n "$TMP_TOKEN"

serves_photos() {
	local f
	for f in photo2mp.jpg photo-dune.png; do
		get "/$f"
		status_is 200 || return 1
		body_same_as "$IMAGES/$f" || return 1
	done
}

# --- from the config file -------------------------------------------------------
CFG_KEY_ID=$TMP_ID CFG_SECRET=$TMP_SECRET CFG_TOKEN=$TMP_TOKEN write_config "$T/sts.ini"
start_lighttpd "$T/sts.ini"
check "config session_token: GETs byte-identical" serves_photos
check "config session_token: the log never holds the token" log_lacks "$TMP_TOKEN"
check "config session_token: the log never holds the secret" log_lacks "$TMP_SECRET"
stop_bg "$LIGHTTPD_PID"

# --- from the environment -------------------------------------------------------
CFG_KEY_ID=- write_config "$T/env.ini"
AWS_ACCESS_KEY_ID=$TMP_ID AWS_SECRET_ACCESS_KEY=$TMP_SECRET AWS_SESSION_TOKEN=$TMP_TOKEN \
	start_lighttpd "$T/env.ini"
check "AWS_SESSION_TOKEN from the environment: GETs byte-identical" serves_photos
stop_bg "$LIGHTTPD_PID"

# --- wrong token ----------------------------------------------------------------
bad_token=${TMP_TOKEN%????}XXXX
CFG_KEY_ID=$TMP_ID CFG_SECRET=$TMP_SECRET CFG_TOKEN=$bad_token write_config "$T/badtoken.ini"
start_lighttpd "$T/badtoken.ini"
get /photo2mp.jpg
ok_json_error "a wrong session token: 502" 502
WORKER_PID=$(imgsvc_pids | head -n 1)
http GET "$BASE/_imgsvc/health"
check "a wrong session token: health still 200" status_is 200
stop_bg "$LIGHTTPD_PID"

# --- token missing --------------------------------------------------------------
CFG_KEY_ID=$TMP_ID CFG_SECRET=$TMP_SECRET CFG_TOKEN= S3_TOKEN= write_config "$T/notoken.ini"
start_lighttpd "$T/notoken.ini"
get /photo2mp.jpg
ok_json_error "the temporary key without its session token: 502" 502
