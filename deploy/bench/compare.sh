#!/usr/bin/env bash
# Measures the relay against raw JetStream on this machine, in one run:
#  1. `nats bench js pub async` (natscli v0.5.0), 2 KB messages, against a
#     nats-server (go.mod's version) with sync_interval: always;
#  2. `noticerelay bench --notices N --clients 64` (durable, as `dev`);
#  3. the same with --fsync default, for comparison.
# Usage: deploy/bench/compare.sh [NOTICES]   (default 20000)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-20000}
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
GOBIN="$work/bin" go install github.com/nats-io/natscli/nats@v0.5.0
go build -o "$work/bin/nats-server" github.com/nats-io/nats-server/v2
go build -o "$work/bin/noticerelay" .
port=$((20000 + RANDOM % 20000))
cat > "$work/ns.conf" <<CONF
listen: 127.0.0.1:$port
jetstream { store_dir: "$work/store", sync_interval: always }
CONF
"$work/bin/nats-server" -c "$work/ns.conf" > "$work/ns.log" 2>&1 &
echo $! > "$work/pid"
sleep 1
echo "== raw JetStream: nats bench js pub async, 2 KB, sync_interval always"
"$work/bin/nats" -s "nats://127.0.0.1:$port" bench js pub async benchsubj --create --purge \
  --size 2KB --msgs "$n" --no-progress 2>&1 | grep -E "stats|msgs/sec"
kill "$(cat "$work/pid")"
echo "== noticerelay bench --notices $n --clients 64 (durable)"
"$work/bin/noticerelay" bench --notices "$n" --clients 64
echo "== noticerelay bench --notices $n --rate 500"
"$work/bin/noticerelay" bench --notices $((n / 2)) --rate 500 --clients 256
echo "== noticerelay bench --notices $n --clients 64 --fsync default"
"$work/bin/noticerelay" bench --notices "$n" --clients 64 --fsync default
