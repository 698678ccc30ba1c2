#!/usr/bin/env bash
# The main job on one machine: a durable tansu broker, the projector, the audit
# ledger and the query API, loaded with a synthetic population (999-range NHS numbers),
# then an example request with a development token. State lives in .spr-local/.
#
#   SPR_PATIENTS=1000   how many synthetic patients to publish
#   SPR_BROKER_PORT=9092, SPR_API_PORT=8080
#   SPR_RUN_ONCE=1      stop everything after the example instead of serving until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/local/install.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spr/target}"
CACHE="${SPR_CACHE:-$HOME/.cache/spr}"
STATE="$PWD/.spr-local"
PATIENTS="${SPR_PATIENTS:-1000}"
BROKER_PORT="${SPR_BROKER_PORT:-9092}"
API_PORT="${SPR_API_PORT:-8080}"
export SPR_BOOTSTRAP="127.0.0.1:$BROKER_PORT"
# The local brokers take plain connections: a broker login set in this shell
# (SPR_KAFKA_*, deploy/README.md) is for another broker, so it is not passed on.
unset $(compgen -e | grep '^SPR_KAFKA_') 2>/dev/null || true
mkdir -p "$STATE/logs"

echo "==> building the SPR binaries (first build about 12 minutes on 2 cores; then seconds)"
cargo build --workspace --bins
BIN="$CARGO_TARGET_DIR/debug"

PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all EXIT
trap 'exit 130' INT TERM

wait_for_port() {
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing is listening on port $1 after 30 s; see $STATE/logs/" >&2
  exit 1
}

if (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null; then
  echo "port $BROKER_PORT is already in use: stop what runs there or set SPR_BROKER_PORT" >&2
  exit 1
fi

echo "==> starting the tansu broker on $SPR_BOOTSTRAP (durable: $STATE/broker.db)"
# tansu resolves a sqlite:// path relative to its working directory. Its cluster id is
# pinned (tansu's default; otherwise a CLUSTER_ID in the environment or a .env file
# would change it, and the projector and the ledger refuse another cluster's log).
(cd "$STATE" && exec "$CACHE/tansu/bin/tansu" broker --listener-url "tcp://127.0.0.1:$BROKER_PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" \
  --cluster-id tansu_cluster \
  --storage-engine "sqlite://broker.db") >"$STATE/logs/broker.log" 2>&1 &
PIDS+=($!)
wait_for_port "$BROKER_PORT"
"$BIN/spr-produce" create-topics

[ -f "$STATE/keys/jwks.json" ] || "$BIN/spr-api" keygen --dir "$STATE/keys"
[ -f "$STATE/keys/checkpoint.key" ] || "$BIN/spr-audit" keygen --dir "$STATE/keys"

# The projection is derived from the log, which $STATE/broker.db keeps: one that another
# build wrote in another storage format is projected again from offset 0.
if [ -d "$STATE/projection" ]; then
  OPENED=$("$BIN/spr-projector" --db "$STATE/projection" check-format 2>&1 >/dev/null || true)
  case "$OPENED" in
  *"is in storage format"*)
    echo "==> $STATE/projection is in another build's storage format: projecting the log again"
    rm -rf "$STATE/projection" "$STATE/api-secondary"
    ;;
  esac
fi

echo "==> starting the projector, the audit ledger and the API (logs in $STATE/logs/)"
"$BIN/spr-projector" --db "$STATE/projection" run >"$STATE/logs/projector.log" 2>&1 &
PIDS+=($!)
"$BIN/spr-ledger" --ledger "$STATE/ledger.spr" --checkpoint-key "$STATE/keys/checkpoint.key" \
  >"$STATE/logs/ledger.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ -d "$STATE/projection" ] && break; sleep 0.1; done
"$BIN/spr-api" serve --listen "127.0.0.1:$API_PORT" --projection-db "$STATE/projection" \
  --secondary-dir "$STATE/api-secondary" --jwks "$STATE/keys/jwks.json" --ledger "$STATE/ledger.spr" \
  >"$STATE/logs/api.log" 2>&1 &
PIDS+=($!)
wait_for_port "$API_PORT"

echo "==> publishing $PATIENTS synthetic patients"
OUT=$("$BIN/spr-produce" synthetic --patients "$PATIENTS" --seed 1 | tee /dev/stderr)
PATIENT=$(printf '%s\n' "$OUT" | awk '/^example patient/ {print $3}')
EXPECTED=$(printf '%s\n' "$OUT" | awk '/^example patient/ {print $5}')
PRACTICE=$(printf '%s\n' "$OUT" | awk '/^example patient/ {print $9}')

# A GP at the patient's registered practice has a legitimate relationship (full tier);
# a clinician elsewhere gets the emergency summary, or must break glass.
TOKEN=$("$BIN/spr-api" token --dir "$STATE/keys" --role clinician --org "$PRACTICE")
URL="http://127.0.0.1:$API_PORT/patients/$PATIENT/timeline?limit=5&full_history=true"
echo "==> waiting for the projection of patient $PATIENT ($EXPECTED events)"
for _ in $(seq 1 300); do
  COUNT=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$API_PORT/patients/$PATIENT/timeline?limit=500&full_history=true&include_superseded=true" \
    | grep -o '"event_id"' | wc -l || true)
  [ "$COUNT" -ge "$EXPECTED" ] && break
  sleep 0.2
done

cat <<MSG

SPR Timeline is running:
  broker     $SPR_BOOTSTRAP
  API        http://127.0.0.1:$API_PORT  (health: /health, readiness: /ready, auditors: /audit/checkpoint)
  ledger     $STATE/ledger.spr           (verify: $BIN/spr-audit verify --ledger $STATE/ledger.spr)

Try (a token of a clinician at the patient's practice, $PRACTICE, valid for an hour;
other views: /summary, /medications, /maternity, /discharge, /fhir/\$everything):
  curl -s -H "Authorization: Bearer $TOKEN" \\
    '$URL'

MSG
curl -s -H "Authorization: Bearer $TOKEN" "$URL"
echo
sleep 2
echo "==> the audit ledger, verified from genesis, and its latest signed checkpoint"
"$BIN/spr-audit" verify --ledger "$STATE/ledger.spr"
"$BIN/spr-audit" verify-checkpoint --checkpoint "$STATE/ledger.spr.checkpoint" \
  --key "$STATE/keys/checkpoint.vkey" --ledger "$STATE/ledger.spr"

if [ "${SPR_RUN_ONCE:-0}" = 1 ]; then exit 0; fi
echo
echo "serving until Ctrl-C"
wait
