#!/usr/bin/env bash
# A smoke test of a running collector, deployed or local (docs/DEPLOY.md, "Smoke test"):
#
#   infra/smoke.sh URL TOKEN        e.g. infra/smoke.sh "$API_URL" "$ID_TOKEN"
#                                        infra/smoke.sh http://127.0.0.1:8080 "$(collector token --sub smoke)"
#
# TOKEN is a bearer JWT of any role (user, service or admin); the checks adapt to it. It logs
# one interaction (platform n8n, training_consent false, so never in an export), reads it, rates
# it, validates a workflow against it, reads stats and readiness, and deletes it again when the
# role may (owner or admin; a service token leaves it, and says so). An admin token also does an
# archive dry run. Needs curl and python3. Prints one line per check and "N passed, N failed";
# exits non-zero when any check failed. SMOKE_PLATFORM overrides the platform (n8n).
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 URL TOKEN" >&2
  exit 2
fi
URL="${1%/}"
TOKEN="$2"
PLATFORM="${SMOKE_PLATFORM:-n8n}"
PASSED=0
FAILED=0
BODY="$(mktemp)"
trap 'rm -f "$BODY"' EXIT

# call METHOD PATH [JSON] [auth|noauth]: sets STATUS, the body in $BODY (follows no redirect).
call() {
  local method="$1" path="$2" data="${3:-}" auth="${4:-auth}"
  local args=(-sS -o "$BODY" -w '%{http_code}' -X "$method" --max-time 60 -H 'Content-Type: application/json')
  [ "$auth" = auth ] && args+=(-H "Authorization: Bearer $TOKEN")
  [ -n "$data" ] && args+=(--data-binary "$data")
  STATUS="$(curl "${args[@]}" "$URL$path" 2>/dev/null)" || STATUS="000"
}

# field EXPR: a value from the last body (python expression over `j`), empty when absent.
field() {
  python3 -c 'import json,sys
try:
    j = json.load(open(sys.argv[1]))
    v = eval(sys.argv[2], {"j": j})
    print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list, bool)) else v))
except Exception:
    print("")' "$BODY" "$1"
}

check() { # check NAME CONDITION-RESULT(0/1) DETAIL
  if [ "$2" = 0 ]; then
    PASSED=$((PASSED + 1)); echo "ok    $1"
  else
    FAILED=$((FAILED + 1)); echo "FAIL  $1: $3 (status $STATUS): $(head -c 300 "$BODY")"
  fi
}
expect() { # expect NAME STATUS...: the last call answered one of the statuses
  local name="$1"; shift
  local s
  for s in "$@"; do
    if [ "$STATUS" = "$s" ]; then check "$name" 0 ""; return 0; fi
  done
  check "$name" 1 "expected $*"
  return 1
}

echo "collector smoke test against $URL"

call GET /api/health "" noauth
expect "GET /api/health (public)" 200 && {
  [ "$(field 'j["status"]')" = ok ]; check "health says ok (backend $(field 'j["backend"]'), version $(field 'j["version"]'))" $? "status not ok"
}
call GET /openapi.json "" noauth
expect "GET /openapi.json (public)" 200
call GET /admin "" noauth
expect "GET /admin (the dashboard page, public, no data in it)" 200
call GET /api/feedback/stats "" noauth
expect "no token: 401" 401

call GET /api/platforms
expect "GET /api/platforms" 200 && {
  [ -n "$(field '[p for p in j["items"] if p["platform"] == "'"$PLATFORM"'"][0]["platform"]')" ]
  check "platform $PLATFORM is known" $? "not in the list"
}

# Log one interaction. A user logs as themselves; service and admin must name the user.
INTERACTION='{"platform": "'"$PLATFORM"'", "kind": "workflow_generation", "training_consent": false,
  "user_message": "collector smoke test: post new Gmail messages to Slack", "ai_response": "Here is your workflow.",
  "metadata": {"source": "infra/smoke.sh"},
  "workflow": {"nodes": [{"name": "Start", "type": "n8n-nodes-base.gmailTrigger", "parameters": {}},
                         {"name": "Slack", "type": "n8n-nodes-base.slack", "parameters": {}}],
               "connections": {"Start": {"main": [[{"node": "Slack", "type": "main", "index": 0}]]}}}}'
call POST /api/interactions "$INTERACTION"
ROLE=user
if [ "$STATUS" = 400 ] && grep -q user_id "$BODY"; then
  ROLE="service or admin"
  call POST /api/interactions "${INTERACTION%\}}, \"user_id\": \"collector-smoke\"}"
fi
ID=""
if expect "POST /api/interactions (as $ROLE)" 201 202; then
  if [ "$STATUS" = 202 ]; then
    echo "note  ENABLE_DATA_COLLECTION is false: nothing was stored, the record checks are skipped"
  else
    ID="$(field 'j["interaction_id"]')"
    [ -n "$ID" ]; check "an interaction_id came back ($ID)" $? "none"
  fi
fi

if [ -n "$ID" ]; then
  call GET "/api/interactions/$ID"
  expect "GET /api/interactions/{id}" 200 && {
    [ "$(field 'j["workflow"]["nodes"][1]["name"]')" = Slack ]; check "the workflow comes back whole" $? "workflow differs"
  }
  call POST /api/feedback/submit '{"interaction_id": "'"$ID"'", "feedback_type": "thumbs_up", "sentiment_score": 5}'
  expect "POST /api/feedback/submit" 201
  call POST /api/workflow/validate '{"platform": "'"$PLATFORM"'", "interaction_id": "'"$ID"'", "workflow": {"nodes": [{"name": "Start", "type": "n8n-nodes-base.gmailTrigger", "parameters": {}}], "connections": {}}}'
  expect "POST /api/workflow/validate" 200 && {
    [ "$(field 'j["interaction_id"]')" = "$ID" ]; check "the validation is linked" $? "not linked"
  }
fi

call GET /api/feedback/stats
expect "GET /api/feedback/stats" 200
call GET "/api/feedback/readiness/$PLATFORM"
expect "GET /api/feedback/readiness/$PLATFORM" 200

# An admin: an archive dry run (writes nothing). 409: archiving off, or a run holds the lease.
call POST /api/feedback/archive '{"dry_run": true}'
case "$STATUS" in
  403) echo "note  not an admin: the archive dry run is skipped" ;;
  *) expect "POST /api/feedback/archive (dry run, admin)" 200 409 ;;
esac

if [ -n "$ID" ]; then
  call DELETE "/api/feedback/data/$ID"
  case "$STATUS" in
    403) echo "note  this role may not delete: interaction $ID stays (user collector-smoke, training_consent false)" ;;
    *)
      expect "DELETE /api/feedback/data/{id}" 200 && {
        [ "$(field 'j["deleted"]["interactions"]')" = 1 ]; check "one interaction deleted" $? "count differs"
      }
      call GET "/api/interactions/$ID"
      expect "gone after the delete" 404
      ;;
  esac
fi

echo "smoke: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
