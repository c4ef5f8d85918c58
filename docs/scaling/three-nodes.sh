#!/usr/bin/env bash
# Three Switchboard nodes and a Redis on this machine, for trying the cluster out (docs/scaling.md).
#   bash docs/scaling/three-nodes.sh          # nodes on :3001 :3002 :3003, Redis on :6380
# REDIS_PORT and BASE_PORT move them; Ctrl-C (or SIGTERM) stops all four.
set -euo pipefail
cd "$(dirname "$0")/../.."
redis_port="${REDIS_PORT:-6380}"
base_port="${BASE_PORT:-3000}"
[ -f dist/server.js ] || npm run build >/dev/null

pids=()
# A Redis of its own, with an append-only file so that history survives a Redis restart.
data_dir="$(mktemp -d)"
stop () { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data_dir"; }
trap stop EXIT INT TERM

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly yes --dir "$data_dir" >"$data_dir/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done

for n in 1 2 3; do
  BROKER=redis REDIS_URL="redis://127.0.0.1:$redis_port" NODE_ID="node-$n" PORT=$((base_port + n)) HOST=127.0.0.1 \
    API_KEY="${API_KEY:-local-cluster-key}" node dist/server.js &
  pids+=($!)
done
echo "nodes: ws://127.0.0.1:$((base_port + 1))/ws ws://127.0.0.1:$((base_port + 2))/ws ws://127.0.0.1:$((base_port + 3))/ws (Redis on $redis_port)"
wait -n
