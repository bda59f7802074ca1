#!/usr/bin/env bash
# Two DGL machines on one host: sharded training of dgl-emu in two network namespaces.
#
#   sudo bash docs/two_machines.sh [DATASET] [DATA_DIR] [OUT]     (default: umls ../shared/datasets two-machines)
#
# What it does (the simulation tests/test_sharded/test_sharded.py runs):
#   1. dgl-emu partition --num-parts 2 (METIS) into OUT/parts;
#   2. two network namespaces joined by a veth pair, 10.231.0.1 and 10.231.0.2, and an ip_config
#      of those two addresses;
#   3. in each namespace, with its own /dev/shm (DGL's servers share their partition with the
#      trainers through shared memory named after the graph, so two machines on one host need
#      two), `dgl-emu run --machine-rank i` with one server and one trainer;
#   4. waits for both, prints their output, and deletes the namespaces (and so the veth pair),
#      also when interrupted. The run directory is OUT/run.
# Needs: root (ip netns, mount), `ip` and `unshare`, dgl-emu installed in the current Python.
# Nothing listens outside the two namespaces.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,17p' "$0"; exit 0; fi
DATASET="${1:-umls}"
DATA_DIR="${2:-../shared/datasets}"
OUT="$(mkdir -p "${3:-two-machines}" && cd "${3:-two-machines}" && pwd)"
PY="$(command -v python3)"
NS=(dgxa$$ dgxb$$)
LINKS=(dgva$$ dgvb$$)
ADDRS=(10.231.0.1 10.231.0.2)
cleanup() {
  for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  ip link del "${LINKS[0]}" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$PY" -m dgl_emu partition --dataset "$DATASET" --data-dir "$DATA_DIR" --num-parts 2 --method metis \
    --output "$OUT/parts"
printf '%s 30051\n%s 30051\n' "${ADDRS[0]}" "${ADDRS[1]}" > "$OUT/ip_config.txt"

ip link add "${LINKS[0]}" type veth peer name "${LINKS[1]}"
for i in 0 1; do
  ip netns add "${NS[$i]}"
  ip link set "${LINKS[$i]}" netns "${NS[$i]}"
  ip -n "${NS[$i]}" addr add "${ADDRS[$i]}/24" dev "${LINKS[$i]}"
  ip -n "${NS[$i]}" link set "${LINKS[$i]}" up
  ip -n "${NS[$i]}" link set lo up
done

pids=()
for i in 0 1; do
  ip netns exec "${NS[$i]}" unshare --mount --propagation private sh -c \
    "mount -t tmpfs tmpfs /dev/shm && exec env GLOO_SOCKET_IFNAME=${LINKS[$i]} MASTER_PORT=29577 \
     $PY -m dgl_emu run --dataset $DATASET --data-dir $DATA_DIR --model distmult --steps 60 --eval-every 30 \
     --no-progress --part-config $OUT/parts/$DATASET.json --ip-config $OUT/ip_config.txt \
     --num-trainers 1 --machine-rank $i --output $OUT/run" > "$OUT/machine$i.log" 2>&1 &
  pids+=($!)
done
status=0
for i in 0 1; do wait "${pids[$i]}" || status=$?; done
for i in 0 1; do echo "== machine $i"; cat "$OUT/machine$i.log"; done
exit $status
