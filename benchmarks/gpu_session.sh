#!/usr/bin/env bash
# GPU measurements in one time-boxed session (a lent GPU machine has no openSMILE, no librosa, no
# corpus): everything reads a feature bundle written beforehand with
#     amsnet features --save emodb.npz [--precision float16]
# and uses the machine's own python3 with torch (amsnet_lib imports no audio library to train).
#
#     benchmarks/gpu_session.sh BUNDLE OUT_DIR [BUDGET_S] [WORKERS]
#
# 1. env.txt          GPU, driver, python and torch versions
# 2. peephole_gpu.txt peephole BLSTM training step vs cuDNN nn.LSTM (bench_peephole.py --device cuda)
# 3. amsnet_paper.txt the full 5-fold AMSNet run under the paper's protocol from nothing (both
#                     branches in WORKERS processes sharing the GPU, then the fusion heads), timed
# 4. suite.txt        the rest of the budget: `amsnet pretrain --fusion` of the whole suite (what
#                     run_all.sh trains), stopped at the deadline; what finished (and each
#                     training's seconds) gives the suite's rate; a budget of ~25 min runs it all
# 5. runs_gpu.tgz     the run store (metrics, curves, predictions, fusion heads; no branch weights)
#    gpu_mem.txt      GPU memory in use (MiB), sampled every 2 s
# The peephole recurrence runs as CUDA graphs (AMSNET_CUDA_GRAPHS=0: kernel by kernel).
#
# Every step is cut at the deadline (BUDGET_S from the start, default 480 s) so that the files
# always come back; timings.json holds the wall times.
set -uo pipefail
bundle=${1:?feature bundle}; out=${2:?output folder}; budget=${3:-480}; workers=${4:-10}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p "$out"
source benchmarks/_gpu_common.sh
runs=${AMSNET_RUN_DIR:-/tmp/amsnet_gpu_runs}

{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nproc
  "$py" -c "import sys, torch, numpy, pandas; print(sys.version.split()[0], torch.__version__, numpy.__version__, pandas.__version__, torch.cuda.is_available())"
} > "$out/env.txt" 2>&1
cat "$out/env.txt"

(while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits >> "$out/gpu_mem.txt" 2>/dev/null; sleep 2; done) &
sampler=$!
stamp bench_start
timeout $(( $(left) > 90 ? 90 : $(left) )) "$py" -m benchmarks.bench_peephole --device "$device" --sizes 256,300,76,128 256,300,76,256 \
    --repeats 20 --warmup 3 2>&1 | tee "$out/peephole_gpu.txt"
stamp bench_end

stamp amsnet_start
timeout "$(left)" "$py" -m amsnet_lib.cli train --features "$bundle" --model amsnet --protocol paper --workers "$workers" \
    --threads 1 --device "$device" --run-dir "$runs" --summary '' 2>&1 | tr '\r' '\n' | grep -v 'it/s\|ep/s\|s/it\|s/ep' \
    | tee "$out/amsnet_paper.txt"
echo "exit ${PIPESTATUS[0]}" >> "$out/amsnet_paper.txt"
stamp amsnet_end

if [ "$(left)" -gt 30 ]; then
    stamp suite_start
    timeout "$(left)" "$py" -m amsnet_lib.cli pretrain --features "$bundle" --cpus "$(( workers + 4 ))" --threads 1 --fusion \
        --device "$device" --run-dir "$runs" 2>&1 | tr '\r' '\n' | grep -v 'it/s\|ep/s\|s/it\|s/ep' > "$out/suite.txt"
    echo "exit ${PIPESTATUS[0]}" >> "$out/suite.txt"
    stamp suite_end
fi
kill "$sampler" 2>/dev/null
tail -3 "$out/suite.txt" 2>/dev/null
find "$runs" -name partial.pt -delete 2>/dev/null
# branch weights stay behind (MBs each); the fusion heads are kept
tar czf "$out/runs_gpu.tgz" --exclude='frlm-*/*/*/model.pt' --exclude='urlm-*/*/*/model.pt' --exclude='early-*/*/*/model.pt' -C "$(dirname "$runs")" "$(basename "$runs")" 2>/dev/null
cat "$out/timings.txt"
