#!/bin/bash
# Spend a lent GPU on the missing cells, on a machine with torch but no registry and no uv.
#
#   scripts/gpu-campaign.sh OUT_DIR SECONDS [WORKERS]
#
# Run from a clean copy of a commit (`git archive`), with beside it (see docs/guide.md,
# "Filling the tables on a lent GPU"):
#   .whl/                wheels of eqdp's dependencies (scripts of the workplace prepare them)
#   .device/data/        the official MedMNIST .npz files
#   .device/source.json  python scripts/source_manifest.py .device/source.json (the commit)
# Steps, each bounded: the CUDA check (scripts/cuda_check.py) in the background, the
# throughput table, then `eqdp campaign` until SECONDS after the start, then the new
# records (and the small checkpoints) as tarballs in OUT_DIR. eqdp imports escnn under
# numpy 2 through its own lie_learn stand-in (eqdp/models/equivariant/lie_learn_fallback.py).
set -uo pipefail
out=$(realpath "$1"); seconds=$2; workers=${3:-}
device=${EQDP_CAMPAIGN_DEVICE:-cuda}  # cpu: rehearse the whole script before a GPU is lent
start=$(date +%s); stamp=$(mktemp)
mkdir -p "$out"
log() { echo "[$(( $(date +%s) - start ))s] $*" | tee -a "$out/campaign.log"; }
wheels=${EQDP_WHEELS:-.whl}
if [ -d "$wheels" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    "$wheels"/*.whl 2>&1 | tail -2
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
export EQDP_DATA_DIR=${EQDP_DATA_DIR:-$PWD/.device/data}
export EQDP_SOURCE_MANIFEST=${EQDP_SOURCE_MANIFEST:-$PWD/.device/source.json}
export GIT_DIR=/nonexistent  # a copy has no .git of its own: the manifest names the code
log "installed; $(python3 -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")')"
python3 - <<'EOF' 2>&1 | tee -a "$out/campaign.log"
from eqdp.results.environment import git_commit, git_dirty
print("code:", git_commit(), "dirty:", git_dirty())
EOF

timeout "$seconds" python3 scripts/cuda_check.py --device "$device" --suite-data "$EQDP_DATA_DIR" \
  > "$out/cuda_check.txt" 2>&1 &
check=$!
[ -z "${EQDP_SKIP_THROUGHPUT:-}" ] && timeout 90 python3 benchmarks/speed/train_throughput.py --device "$device" --steps 40 \
  ${EQDP_THROUGHPUT_MODELS:+--models "$EQDP_THROUGHPUT_MODELS"} \
  2>&1 | grep -v Warning | tee "$out/train_throughput.txt"
log "throughput done"

left=$(( seconds - ($(date +%s) - start) - 45 ))  # 45 s for the tarballs
budget=$(( left - 60 ))  # no run starts in the last minute of the window
if [ "$budget" -le 0 ]; then log "no time left for the campaign"; budget=1; fi
log "campaign: budget ${budget}s, hard stop ${left}s"
timeout --signal=TERM "$left" python3 -m eqdp campaign --device "$device" --time-budget "$budget" \
  ${workers:+--workers "$workers"} > "$out/campaign-run.log" 2>&1
log "campaign exit $?"
kill "$check" 2>/dev/null; wait "$check" 2>/dev/null || true
find results -newer "$stamp" -name '*.json' -not -path '*/.claims/*' -not -path '*/.submitit/*' \
  -not -path '*/.campaign/*' -not -path '*/checkpoints/*' > "$stamp.records"
tar czf "$out/records.tar.gz" -T "$stamp.records"
find results/checkpoints -newer "$stamp" -type f -size -4M > "$stamp.checkpoints" 2>/dev/null
tar czf "$out/checkpoints.tar.gz" -T "$stamp.checkpoints" 2>/dev/null
log "$(wc -l < "$stamp.records") records, $(wc -l < "$stamp.checkpoints") checkpoints"
tail -5 "$out/campaign-run.log"
