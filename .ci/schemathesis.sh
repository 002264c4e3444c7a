#!/usr/bin/env bash
# Runs schemathesis over every operation of the served OpenAPI document: coverage, fuzzing and
# stateful phases, checking server errors, status codes, content types and response schemas.
# A fixed seed and a bounded number of examples keep it reproducible and short.
#
#   .ci/schemathesis.sh [path/to/secureconnect]      (default: target/debug/secureconnect)
#
# Set SC_TEST_PG_URL / SC_TEST_REDIS_URL to run it against PostgreSQL + Redis.
# Routes that end or may end the session under test (logout, logout-all, password change,
# account deletion) run with their own user.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-target/debug/secureconnect}
SEED=${ST_SEED:-20261201}
EXAMPLES=${ST_MAX_EXAMPLES:-50}
python3 -c 'import schemathesis, openapi_spec_validator' 2>/dev/null ||
  python3 -m pip install -q 'schemathesis==4.32.5' 'openapi-spec-validator==0.9.0'

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export SC_DATA_DIR="$work/data" SC_LISTEN="127.0.0.1:$port" SC_PUBLIC_URL="$base"
# The run sends thousands of requests from one address and one user.
export SC_LOGIN_RATE_PER_IP_PER_MINUTE=1000000 SC_AUTH_RATE_PER_IP_PER_MINUTE=1000000
export SC_API_RATE_PER_IP_PER_MINUTE=0 SC_WS_CONNECTS_PER_IP_PER_MINUTE=0
export SC_API_RATE_PER_USER_PER_MINUTE=1000000 SC_MESSAGE_RATE_PER_USER_PER_MINUTE=1000000
export SC_EMAIL_RESEND_PER_HOUR=1000000 SC_MAX_SESSIONS_PER_USER=1000
if [ -n "${SC_TEST_PG_URL:-}" ]; then
  db="sc_test_st_$$"
  psql "$SC_TEST_PG_URL" -qc "CREATE DATABASE $db"
  export SC_DATABASE_URL="${SC_TEST_PG_URL%/*}/$db"
fi
[ -n "${SC_TEST_REDIS_URL:-}" ] && export SC_REDIS_URL="$SC_TEST_REDIS_URL" SC_REDIS_KEY_PREFIX="st$$:"
if [ -n "${SC_TEST_S3_URL:-}" ]; then
  # The drive on S3: its own bucket, created with the admin command operators use.
  export SC_S3_ENDPOINT="$SC_TEST_S3_URL" SC_S3_BUCKET="sc-st-$$" SC_S3_PATH_STYLE=true
  export SC_S3_ACCESS_KEY_ID="${SC_TEST_S3_ACCESS_KEY_ID:-sc-test-access-key}"
  export SC_S3_SECRET_ACCESS_KEY="${SC_TEST_S3_SECRET_ACCESS_KEY:-sc-test-secret-key}"
  "$BIN" admin create-bucket
fi

# FCM is configured, so FCM subscriptions are taken, against a token endpoint nobody serves:
# its pushes fail and end as dead letters, which is fine here.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/fcm-key.pem" 2>/dev/null
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
key = open(f"{work}/fcm-key.pem").read()
json.dump({"type": "service_account", "project_id": "st", "private_key": key,
           "client_email": "st@st.iam.gserviceaccount.com", "token_uri": "https://127.0.0.1:9/token"},
          open(f"{work}/fcm.json", "w"))
PY
export SC_FCM_CREDENTIALS_FILE="$work/fcm.json"

"$BIN" serve >"$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  if [ -n "${db:-}" ]; then psql "$SC_TEST_PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.2; done

# The served document is valid OpenAPI 3.1 before anything is generated from it.
curl -sf "$base/v1/openapi.json" >"$work/openapi.json"
openapi-spec-validator "$work/openapi.json"

# Provisioning: users, a group with a message, a direct conversation.
register() { # name → access token
  curl -sf -H 'content-type: application/json' "$base/v1/auth/register" \
    -d "{\"email\":\"$1@example.org\",\"username\":\"$1\",\"password\":\"correct horse battery staple\",\"display_name\":\"$1\"}" |
    python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(d["access_token"], d["user"]["id"])'
}
read -r main_token main_id < <(register stmain)
read -r friend_token friend_id < <(register stfriend)
read -r leaver_token _ < <(register stleaver)
read -r self_token _ < <(register stself)
auth=(-H "authorization: Bearer $main_token" -H 'content-type: application/json')
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['data']['$1'])"; }
post() { curl -sf "${auth[@]}" "$base$1" -d "$2"; }
group=$(post /v1/conversations "{\"kind\":\"group\",\"member_ids\":[\"$friend_id\"],\"title\":\"st\"}" | json_field id)
spare_group=$(post /v1/conversations "{\"kind\":\"group\",\"member_ids\":[\"$friend_id\"],\"title\":\"spare\"}" | json_field id)
direct=$(post /v1/conversations "{\"kind\":\"direct\",\"member_ids\":[\"$friend_id\"]}" | json_field id)
message=$(post "/v1/conversations/$group/messages" '{"client_message_id":"st-1","content":"hello"}' | json_field id)
post "/v1/conversations/$direct/messages" '{"client_message_id":"st-2","content":"hi there"}' >/dev/null
poll=$(post "/v1/conversations/$group/messages" '{"client_message_id":"st-poll","kind":"poll","content":"Lunch?","metadata":{"poll":{"options":["pizza","sushi"],"multiple":true}}}' | json_field id)
ticket=$(post /v1/files/uploads '{"name":"notes.txt","size":5,"content_type":"text/plain"}')
file=$(echo "$ticket" | json_field file_id)
upload_url=$(echo "$ticket" | json_field upload_url)
mapfile -t put_headers < <(echo "$ticket" | python3 -c 'import json,sys
for k, v in json.load(sys.stdin)["data"]["headers"].items(): print("-H"); print(f"{k}: {v}")')
curl -sf -X PUT "${put_headers[@]}" --data-binary hello "$upload_url" >/dev/null
post "/v1/files/$file/complete" '{}' >/dev/null
folder=$(post /v1/folders '{"name":"docs"}' | json_field id)
spare_folder=$(post /v1/folders '{"name":"spare"}' | json_field id)
link=$(post "/v1/files/$file/links" '{}' | json_field token)
call=$(post /v1/calls "{\"conversation_id\":\"$group\",\"kind\":\"audio\"}" | json_field id)
post "/v1/conversations/$group/messages" "{\"client_message_id\":\"st-3\",\"kind\":\"file\",\"attachments\":[\"$file\"]}" >/dev/null
# A notification for the main user (offline: no socket), and a push subscription of theirs.
curl -sf -H "authorization: Bearer $friend_token" -H 'content-type: application/json' \
  "$base/v1/conversations/$group/messages" -d '{"client_message_id":"st-4","content":"for you @stmain"}' >/dev/null
notification=""
for _ in $(seq 1 50); do
  notification=$(curl -sf "${auth[@]}" "$base/v1/notifications" |
    python3 -c 'import json,sys; i=json.load(sys.stdin)["data"]["items"]; print(i[0]["id"] if i else "")')
  [ -n "$notification" ] && break
  sleep 0.1
done
[ -n "$notification" ] || { echo "no notification was provisioned"; exit 1; }
push_subscription=$(post /v1/push/subscriptions '{"kind":"fcm","token":"st-device-token"}' | json_field id)
echo "provisioned user $main_id, group $group, message $message, file $file"

# Known ids go into the generated requests part of the time, so the fuzzer reaches the rules
# behind the 404s; the rest stay random. The spare group is the one DELETE may remove.
cat >"$work/schemathesis.toml" <<TOML
[dictionaries.conversation]
values = ["$group", "$direct"]
[dictionaries.spare_conversation]
values = ["$spare_group"]
[dictionaries.message]
values = ["$message", "$poll"]
[dictionaries.file]
values = ["$file", "$folder"]
[dictionaries.spare_file]
values = ["$spare_folder"]
[dictionaries.folder]
values = ["$folder"]
[dictionaries.call]
values = ["$call"]
[dictionaries.link]
values = ["$link"]
[dictionaries.user]
values = ["$friend_id", "$main_id"]
[dictionaries.notification]
values = ["$notification"]
[dictionaries.push_subscription]
values = ["$push_subscription"]

[[operations]]
include-path-regex = '^/v1/conversations/\{id\}'
exclude-method = "DELETE"
parameters = { "path.id" = { dictionary = "conversation", probability = 0.8 }, "path.user_id" = { dictionary = "user", probability = 0.5 } }

[[operations]]
include-path-regex = '^/v1/conversations/\{id\}'
include-method = "DELETE"
parameters = { "path.id" = { dictionary = "spare_conversation", probability = 0.5 }, "path.user_id" = { dictionary = "user", probability = 0.3 } }

[[operations]]
include-path-regex = '^/v1/messages/\{id\}'
parameters = { "path.id" = { dictionary = "message", probability = 0.8 } }

[[operations]]
include-path-regex = '^/v1/users/\{id\}'
parameters = { "path.id" = { dictionary = "user", probability = 0.8 } }

[[operations]]
include-path-regex = '^/v1/files/\\{id\\}'
exclude-method = "DELETE"
parameters = { "path.id" = { dictionary = "file", probability = 0.8 } }

[[operations]]
include-path-regex = '^/v1/files/\\{id\\}'
include-method = "DELETE"
parameters = { "path.id" = { dictionary = "spare_file", probability = 0.5 } }

[[operations]]
include-path-regex = '^/v1/(files|folders|files/uploads)$'
parameters = { "query.parent_id" = { dictionary = "folder", probability = 0.5 }, "body.parent_id" = { dictionary = "folder", probability = 0.5 } }

[[operations]]
include-path-regex = '^/v1/calls/\\{id\\}'
parameters = { "path.id" = { dictionary = "call", probability = 0.8 } }

[[operations]]
include-path = "/v1/calls"
parameters = { "query.conversation_id" = { dictionary = "conversation", probability = 0.8 }, "body.conversation_id" = { dictionary = "conversation", probability = 0.5 } }

[[operations]]
include-path-regex = '^/v1/links/'
parameters = { "path.token" = { dictionary = "link", probability = 0.8 } }

[[operations]]
include-path-regex = '^/v1/notifications/\\{id\\}'
parameters = { "path.id" = { dictionary = "notification", probability = 0.8 } }

[[operations]]
include-path-regex = '^/v1/push/subscriptions/\\{id\\}'
parameters = { "path.id" = { dictionary = "push_subscription", probability = 0.5 } }

[[operations]]
include-path = "/v1/search/messages"
parameters = { "query.conversation_id" = { dictionary = "conversation", probability = 0.5 } }
TOML

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
common=(--checks "$checks" --seed "$SEED" --max-examples "$EXAMPLES" --phases examples,coverage,fuzzing,stateful
  --generation-database none --request-timeout 30 --workers 1 --no-color --suppress-health-check all)
session_enders='^/v1/auth/(browser/)?logout(-all)?$'
account_changers='^/v1/users/me(/password)?$'

status=0
st --config-file "$work/schemathesis.toml" run "$base/v1/openapi.json" "${common[@]}" -H "authorization: Bearer $main_token" \
  --exclude-path-regex "$session_enders|$account_changers" || status=$?
st --config-file "$work/schemathesis.toml" run "$base/v1/openapi.json" "${common[@]}" -H "authorization: Bearer $self_token" \
  --include-path-regex "$account_changers" || status=$?
st --config-file "$work/schemathesis.toml" run "$base/v1/openapi.json" "${common[@]}" -H "authorization: Bearer $leaver_token" \
  --include-path-regex "$session_enders" || status=$?
if grep -q '"level":"ERROR"' "$work/server.log"; then
  echo "server logged errors:"; grep '"level":"ERROR"' "$work/server.log" | head -20; status=1
fi
exit $status
