#!/usr/bin/env bash
# The one prepared GPU session (about 9 minutes on one H100/H200), run from the repository root:
#
#     OUT=/tmp/gpu bash benchmarks/gpu_run.sh
#
# 1. the generation fast path against the eager loop (benchmarks/gpu_check.py), on an idle GPU,
#    while the built-in corpus is built on the other CPU cores; then fp32 graphs, whose motion
#    must equal the eager path's (the same-motion check);
# 2. fine-tuning memory against T and seconds per update for every method (finetune_gpu.py);
# 3. the `large` training preset of every backbone, cut to fit the time left (--fit-minutes; the
#    steps each stage ran are recorded in its manifest): MDM in one process, VAE -> MLD denoiser
#    -> LCM distillation in another; then each is stored fp16 (`training.ship`).
# 4. with pyzmq importable (carried as a wheel in .whl/, see the device notes): the real server,
#    `serve --gpu 0`, fast path against --eager (gpu_serve_check.py), then benchmarks/server.py --gpu
#    (the serving overhead against the same fast path in process).
# Results land in $OUT: the weight files and results.tgz (JSON, logs, manifests). A weight file
# over 15 MiB (the device tool returns files up to 16 MiB) comes back in parts:
# `cat NAME.safetensors.part-* > NAME.safetensors`; its SHA-256 is in sha256.txt.
# Nothing is installed: the engine runs from the source tree on the machine's own PyTorch.
# TRAIN=0 skips 3; FT=0 skips 2; FT_ARGS adds arguments to finetune_gpu.py (e.g. --methods ...);
# MDM_PRESET=refine continues the shipped MDM with the `refine` preset (MDM_STEPS at most, cut to
# the time left) instead of training `large` from scratch, MDM_PRESET=none trains no MDM;
# VAE_SHARE / DENOISER_SHARE / LCM_SHARE split the latent chain's time (default 0.33 / 0.47 / 0.20).
# PRESET=frames (with MDM_PRESET=none) trains the latent chain on the VAE with one latent per 4
# frames instead of 16 global tokens (README: 37.7% of test clips pass the oracle after its round
# trip at 2,500 CPU steps of 64, 27.1% after the shipped 16 x 32 VAE's); gate its VAE with
# vae_round_trip.py before shipping anything trained on it.
set -u
T0=$(date +%s)
ROOT=$(pwd)
OUT=${OUT:-/tmp/gpu-out}
R=$OUT/r
mkdir -p "$R"
export PYTHONPATH=$ROOT/engine:$ROOT/protocol:$ROOT/benchmarks
export EASYTUNE_HOME=${EASYTUNE_HOME:-/tmp/ethome} PYTHONUNBUFFERED=1
PY=${PY:-python3}
END_S=${END_S:-555}  # the whole script should be done this many seconds after it starts
WORKERS=${WORKERS:-0}  # > 0: batches drawn by worker processes instead of on the device
PRESET=${PRESET:-large}  # tiny for a CPU dry run
TRAIN=${TRAIN:-1}
FT=${FT:-1}
SPLIT_MIB=${SPLIT_MIB:-15}  # weight files over this many MiB come back in parts
FT_ARGS=${FT_ARGS:-}
MDM_PRESET=${MDM_PRESET:-$PRESET}
MDM_STEPS=${MDM_STEPS:-8000}
VAE_SHARE=${VAE_SHARE:-0.33} DENOISER_SHARE=${DENOISER_SHARE:-0.47} LCM_SHARE=${LCM_SHARE:-0.20}
if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
DEVICE=${DEVICE:-cuda}
stamp() { echo "[gpu_run +$(($(date +%s) - T0)) s] $*" | tee -a "$R/timeline.txt"; }
pack() { tar czf "$OUT/results.tgz.part" -C "$OUT" r && mv "$OUT/results.tgz.part" "$OUT/results.tgz"; }

stamp "start"
(nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv) >"$R/nvidia-smi.txt" 2>&1
$PY -c "import sys, torch, numpy; print(sys.version.split()[0], torch.__version__, numpy.__version__, torch.cuda.is_available())" 2>&1 | tee "$R/versions.txt"

# 1. fast path, while the corpus builds on cores 2..
PIN_REST="" PIN_TWO=""
if [ "$(nproc)" -ge 4 ]; then
    PIN_REST="taskset -c 2-$(($(nproc) - 1))" PIN_TWO="taskset -c 0,1"
fi
$PIN_REST $PY -m easytune_engine data build >"$R/corpus.log" 2>&1 &
CORPUS=$!
stamp "gpu_check"
$PIN_TWO timeout 150 $PY benchmarks/gpu_check.py --device "$DEVICE" --repeats 10 \
    --out "$R/gpu_check.json" >"$R/gpu_check.log" 2>&1
stamp "gpu_check rc=$?"
# the same-motion check: fp32 graphs against the eager fp32 loop (joint differences ~0)
$PIN_TWO timeout 80 $PY benchmarks/gpu_check.py --device "$DEVICE" --repeats 5 --graph-dtype fp32 \
    --backbones lcm mld --out "$R/gpu_check_fp32.json" >"$R/gpu_check_fp32.log" 2>&1
stamp "gpu_check fp32 rc=$?"
pack
wait $CORPUS
stamp "corpus rc=$?"

# 2. fine-tuning memory and speed
if [ "$FT" = 1 ]; then
    # shellcheck disable=SC2086
    timeout "${FT_TIMEOUT:-110}" $PY benchmarks/finetune_gpu.py --device "$DEVICE" --deadline-s 80 --out "$R" $FT_ARGS \
        >"$R/finetune_gpu.log" 2>&1
    stamp "finetune_gpu rc=$?"
    pack
fi

# 4. the real server on the GPU
if $PY -c "import zmq" 2>/dev/null; then
    SERVE_DEV="--gpu=0"
    [ "$DEVICE" = cpu ] && SERVE_DEV="--cpu"
    timeout 150 $PY benchmarks/gpu_serve_check.py "$SERVE_DEV" --out "$R/gpu_serve_check.json" \
        >"$R/gpu_serve_check.log" 2>&1
    stamp "gpu_serve_check rc=$?"
    # the serving overhead, paired against the same fast path in process (target <= 5 ms)
    [ "$DEVICE" = cuda ] && timeout 150 $PY benchmarks/server.py --gpu --out "$R/server_gpu.json" \
        >"$R/server_gpu.log" 2>&1
    stamp "server --gpu rc=$?"
    pack
fi
[ "$TRAIN" = 1 ] || { stamp "done (no training)"; pack && rm -rf "$R"; ls -la "$OUT"; exit 0; }

# 3. training, two processes side by side
train() {  # name, preset, then the train command's other arguments
    local name=$1 preset=$2
    shift 2
    local data=(--device-data) t=$(date +%s)
    [ "$WORKERS" -gt 0 ] && data=(--workers "$WORKERS")
    $PY -m easytune_engine train --backbone "$name" --preset "$preset" --device "$DEVICE" \
        "${data[@]}" --quiet --out "/tmp/runs/$name" "$@" >"$R/train_$name.log" 2>&1
    local rc=$?
    if [ $rc != 0 ] && [ "$WORKERS" = 0 ] && [ $(($(date +%s) - t)) -lt 90 ]; then
        # an early failure of the device-held data path: once more with worker processes
        stamp "train $name rc=$rc with --device-data; again with --workers 6"
        rm -rf "/tmp/runs/$name"
        $PY -m easytune_engine train --backbone "$name" --preset "$preset" --device "$DEVICE" \
            --workers 6 --quiet --out "/tmp/runs/$name" "$@" >"$R/train_${name}_workers.log" 2>&1
        rc=$?
    fi
    cp "/tmp/runs/$name/log.jsonl" "$R/train_$name.jsonl" 2>/dev/null
    stamp "train $name rc=$rc"
    return $rc
}
# what is left, less about 75 s of process starts and fp16 copies, goes to training: all of it to
# MDM; to VAE / MLD denoiser / LCM in the ratio of the shares (one after the other)
LEFT=$((END_S - $(date +%s) + T0 - 75))
read -r MIN_MDM MIN_VAE MIN_DENOISER MIN_LCM < <($PY -c "
m = max($LEFT, 60) / 60 - 0.5  # each process starts in about 10 s
print(f'{m:.2f} {$VAE_SHARE * m:.2f} {$DENOISER_SHARE * m:.2f} {$LCM_SHARE * m:.2f}')")
stamp "training: $LEFT s left; minutes mdm $MIN_MDM vae $MIN_VAE denoiser $MIN_DENOISER lcm $MIN_LCM"
MDM_ARGS=()
[ "$MDM_PRESET" = refine ] &&
    MDM_ARGS=(--init "$ROOT/engine/easytune_engine/weights/mdm.safetensors" --steps "mdm=$MDM_STEPS")
MDM=
if [ "$MDM_PRESET" != none ]; then
    train mdm "$MDM_PRESET" --fit-minutes "mdm=$MIN_MDM" "${MDM_ARGS[@]}" &
    MDM=$!
fi
(train mld "$PRESET" --fit-minutes "vae=$MIN_VAE" "denoiser=$MIN_DENOISER" &&
    train lcm "$PRESET" --teacher /tmp/runs/mld/model.safetensors --fit-minutes "lcm=$MIN_LCM") &
MLD=$!
# shellcheck disable=SC2086
wait $MDM $MLD
pack

# fp16 copies + manifests (metrics are attached after the CPU evaluation)
for name in mdm mld lcm; do
    if [ -f "/tmp/runs/$name/model.safetensors" ]; then
        $PY -m easytune_engine.training.ship --backbone "$name" \
            --model "/tmp/runs/$name/model.safetensors" >>"$R/ship.log" 2>&1 &&
            cp "engine/easytune_engine/weights/$name.manifest.json" "$R/"
        rc=$?
        f="engine/easytune_engine/weights/$name.safetensors"
        if [ $rc = 0 ]; then
            (cd "$(dirname "$f")" && sha256sum "$name.safetensors") >>"$OUT/sha256.txt"
            if [ "$(stat -c %s "$f")" -gt $((SPLIT_MIB * 1024 * 1024)) ]; then
                split -b "${SPLIT_MIB}M" "$f" "$OUT/$name.safetensors.part-"
            else
                cp "$f" "$OUT/$name.safetensors"
            fi
        fi
        stamp "ship $name rc=$rc"
    fi
done
stamp "done"
pack && rm -rf "$R"
ls -la "$OUT"
