#!/usr/bin/env bash
# GPU session: install the kit (.whl/, built here by `python3 devtools/gpu_kit/build_kit.py`) and
# take every figure in ONE device call of at most 9 minutes, from the repo root:
#
#     run(command="bash devtools/gpu_kit/session.sh", carry=[".whl"], timeout_s=560)
#
# Stages, in order, with each one's own limit on the device (s) and in a --dry-run (s):
#   smoke       nvidia-smi, versions, every project module imported, the kit's
#               requirements, a bf16 matmul, pytest tests/test_projection.py -k cuda   75 / 120
#   projection  bench_projection.py: mixed-material patterns/s                            45 / 60
#   ni          scripts/validate_emsoft_ni.py --device cuda: Pearson r against EMsoft's Ni
#               master (full npx 200 grid; stride 8 in a dry run)                         75 / 60
#   training    bench_training.py: stream + Ray Train vs bare loop, one GPU worker       150 / 180
#   engine      bench_engine.py: seconds per material at the paper's settings and the
#               projected GPU-hours; it gets the time left (at most 300 s / 60 s) and
#               shares it among its four materials (extrapolating each from the
#               direction batches done in its share)
# Installing the kit takes ~10-30 s (skipped when a warm machine already has this kit).
# Name stages to run only those: `bash devtools/gpu_kit/session.sh smoke ni`.
#
# The whole script keeps to EBSDLAKE_GPU_BUDGET_S (default 530 s from its start; 300 s in a dry
# run): a stage's limit is clipped to what is left, a stage left with under 20 s is skipped,
# and the summary is written before the device's 560 s kill. A failing stage does not stop the
# next ones, and each bench rewrites its JSON as it goes, so a stage cut short keeps its
# finished figures.
#
# --dry-run: the same stages on this machine's CPU with tiny sizes (no kit installed; Python
# .venv/bin/python unless EBSDLAKE_GPU_PYTHON says otherwise). `smoke` then ends NO-GPU and the
# other stages OK. devtools/gpu_kit/test_gpu_kit.py runs it.
#
# Output under $OUT (the device returns at most 8 files): session.log (everything, via tee),
# summary.txt (one line per stage), smoke.json, gpu_projection.json, ni_validation.json,
# gpu_training.json, gpu_engine.json, and ray_logs.tgz when the training stage fails.
#
# Environment: OUT (default /tmp/gpu-session-out), EBSDLAKE_GPU_PYTHON (default python3: on the
# device, Python 3.12 with torch), EBSDLAKE_GPU_SITE (default /tmp/site), EBSDLAKE_GPU_BUDGET_S.
# With a Python other than 3.12 the cp312 kit is not installed and that Python's own packages
# are used.
set -u

KIT="devtools/gpu_kit"
STAGES_KNOWN="smoke projection ni training engine"
OUT="${OUT:-/tmp/gpu-session-out}"
export OUT

if [[ -z "${_GPU_SESSION_LOGGING:-}" ]]; then
    # Re-run this script with all of its output copied to $OUT/session.log.
    mkdir -p "$OUT"
    export _GPU_SESSION_LOGGING=1 _GPU_SESSION_T0="${_GPU_SESSION_T0:-$(date +%s)}"
    set -o pipefail
    bash "$0" "$@" 2>&1 | tee "$OUT/session.log"
    exit "${PIPESTATUS[0]}"
fi

DRY_RUN=0
if [[ "${1:-}" == "--dry-run" ]]; then
    DRY_RUN=1
    shift
fi
if ((DRY_RUN)); then
    PY="${EBSDLAKE_GPU_PYTHON:-.venv/bin/python}"
    BUDGET_S="${EBSDLAKE_GPU_BUDGET_S:-300}"
else
    PY="${EBSDLAKE_GPU_PYTHON:-python3}"
    BUDGET_S="${EBSDLAKE_GPU_BUDGET_S:-530}"
fi
SITE="${EBSDLAKE_GPU_SITE:-/tmp/site}"
T0="${_GPU_SESSION_T0}"
REPO="$(pwd)"
NI_FILE="$REPO/.whl/data/ni_mc_mp_20kv_uint8_gzip_opts9.h5"
declare -a SUMMARY=()

export PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0 RAY_DEDUP_LOGS=1 MPLBACKEND=Agg

log() { echo "[gpu-session $(($(date +%s) - T0))s] $*"; }
left_s() { echo $((BUDGET_S - ($(date +%s) - T0))); }

usage() {
    echo "usage: bash $KIT/session.sh [--dry-run] [STAGE...] (stages: $STAGES_KNOWN)" >&2
    exit 2
}

(($# > 0)) || set -- $STAGES_KNOWN
for stage in "$@"; do
    [[ " $STAGES_KNOWN " == *" $stage "* ]] || { echo "unknown stage: $stage" >&2; usage; }
done
[[ -f "$KIT/session.sh" && -d train ]] || { echo "run from the repo root" >&2; exit 2; }

install_kit() {
    # Install .whl/*.whl into $SITE (and .whl/fallback/*.whl where the device's copy is
    # older), then put $SITE and the repo first on PYTHONPATH.
    local pyver stamp
    pyver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" || return 1
    if [[ "$pyver" != "3.12" ]]; then
        log "kit is built for CPython 3.12; $PY is $pyver: not installing it, using $PY's packages"
        export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
        return 0
    fi
    if ! compgen -G ".whl/*.whl" >/dev/null; then
        log "no .whl/*.whl: build the kit here with 'python3 devtools/gpu_kit/build_kit.py' and carry .whl"
        return 1
    fi
    stamp="$(ls -l .whl .whl/fallback 2>/dev/null | md5sum | cut -d' ' -f1)"
    if [[ -f "$SITE/.kit-stamp" && "$(cat "$SITE/.kit-stamp")" == "$stamp" ]]; then
        log "kit already installed in $SITE"
    else
        log "installing $(ls .whl/*.whl | wc -l) wheels into $SITE"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SITE" .whl/*.whl || return 1
        local wheel name version older
        for wheel in .whl/fallback/*.whl; do
            [[ -f "$wheel" ]] || continue
            name="$(basename "$wheel" | cut -d- -f1)"
            version="$(basename "$wheel" | cut -d- -f2)"
            older="$("$PY" - "$name" "$version" <<'EOF'
import importlib.metadata as m, sys
from packaging.version import Version
try:
    print(int(Version(m.version(sys.argv[1])) < Version(sys.argv[2])))
except m.PackageNotFoundError:
    print(1)
EOF
)"
            if [[ "$older" == 1 ]]; then
                log "fallback: device's $name is older than $version: installing the kit's"
                "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
                    --upgrade --target "$SITE" "$wheel" || return 1
            fi
        done
        echo "$stamp" >"$SITE/.kit-stamp"
    fi
    export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
}

run_stage() {
    # run_stage NAME LIMIT_S RESULT_FILE COMMAND...: run with a timeout clipped to the time left.
    local name="$1" limit="$2" result="$3" left rc started status
    shift 3
    left="$(left_s)"
    ((left - 5 < limit)) && limit=$((left - 5))
    if ((limit < 20)); then
        SUMMARY+=("$(printf '%-10s %-16s %5ss  %s' "$name" "SKIPPED(no-time)" 0 "-")")
        log "stage $name skipped: ${left}s left of the ${BUDGET_S}s budget"
        return
    fi
    log "stage $name: start (limit ${limit}s): $*"
    rm -f "$result"
    started=$(date +%s)
    STAGE_LIMIT_S=$limit timeout --kill-after=10 "$limit" "$@"
    rc=$?
    case $rc in
        0) status=OK ;;
        124 | 137) status="TIMEOUT(${limit}s)" ;;
        *) status="FAIL(rc=$rc)" ;;
    esac
    [[ "$name" == smoke && $rc == 2 ]] && status="NO-GPU"
    [[ -f "$result" ]] || result="-"
    SUMMARY+=("$(printf '%-10s %-16s %5ss  %s' "$name" "$status" $(($(date +%s) - started)) "${result#"$OUT"/}")")
    log "stage $name: $status"
    LAST_RC=$rc
}

# Stage functions run under `timeout` through `bash -c`, hence exported with what they use.
export PY OUT T0 BUDGET_S DRY_RUN KIT

smoke() {
    # nvidia-smi, smoke.py, then the CUDA projection test; rc 0 / 1 failure / 2 no GPU.
    nvidia-smi 2>/dev/null || echo "(nvidia-smi failed or is missing)"
    "$PY" "$KIT/smoke.py" --kit .whl --out "$OUT/smoke.json"
    local rc=$?
    ((DRY_RUN)) && return $rc # the CUDA test would only be skipped on a CPU
    "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_projection.py -k cuda || return 1
    return $rc
}

engine() {
    # The engine bench, sharing the stage's time (less start-up) among its materials.
    local total=$((STAGE_LIMIT_S - 15))
    log "engine: --total-s $total"
    if ((DRY_RUN)); then
        "$PY" "$KIT/bench_engine.py" --device cpu --materials Ni,Si --npx 8 \
            --mc-electrons 1000 --total-s "$total" --out "$OUT/gpu_engine.json"
    else
        "$PY" "$KIT/bench_engine.py" --device cuda --total-s "$total" \
            --out "$OUT/gpu_engine.json"
    fi
}

export -f log left_s smoke engine

ray_logs() {
    # After a failed training stage: stop Ray and keep its logs (at most ~15 MB).
    "$PY" -m ray.scripts.scripts stop --force >/dev/null 2>&1
    if [[ -d /tmp/ray/session_latest/logs ]]; then
        tar czf "$OUT/ray_logs.tgz" --dereference -C /tmp/ray/session_latest logs 2>/dev/null
        if (($(stat -c %s "$OUT/ray_logs.tgz") > 15000000)); then
            find /tmp/ray/session_latest/logs/ -name '*.err' -o -name '*.out' |
                tar czf "$OUT/ray_logs.tgz" --dereference -T - 2>/dev/null
        fi
    fi
}

if ((DRY_RUN)); then
    DEVICE=cpu
    PROJECTION_ARGS=(--materials 4 --npx 51 --sizes 32,48 --batches 16 --reps 3)
    TRAINING_ARGS=(--arch resnet10 --batch 8 --size 32 --steps 2 --npx 16)
    NI_ARGS=(--stride 8)
    LIMITS=(120 60 60 180 60) # smoke projection ni training engine
else
    DEVICE=cuda
    PROJECTION_ARGS=()
    TRAINING_ARGS=()
    NI_ARGS=()
    LIMITS=(75 45 75 150 300)
fi

log "stages: $* | repo $REPO | OUT $OUT | python $PY | budget ${BUDGET_S}s | device $DEVICE"
if ((DRY_RUN)); then
    log "dry run: kit not installed, $PY's own packages"
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
    install_ok=1
elif install_kit; then
    install_ok=1
else
    install_ok=0
fi
if ((install_ok)); then
    [[ -z "${EBSDLAKE_NI_MASTER:-}" && -f "$NI_FILE" ]] && export EBSDLAKE_NI_MASTER="$NI_FILE"
    log "PYTHONPATH=$PYTHONPATH EBSDLAKE_NI_MASTER=${EBSDLAKE_NI_MASTER:-}"
    for stage in "$@"; do
        LAST_RC=0
        case "$stage" in
            smoke)
                run_stage smoke "${LIMITS[0]}" "$OUT/smoke.json" bash -c smoke
                ;;
            projection)
                run_stage projection "${LIMITS[1]}" "$OUT/gpu_projection.json" \
                    "$PY" "$KIT/bench_projection.py" --device "$DEVICE" \
                    --budget-s $((LIMITS[1] - 20)) "${PROJECTION_ARGS[@]}" \
                    --out "$OUT/gpu_projection.json"
                ;;
            ni)
                run_stage ni "${LIMITS[2]}" "$OUT/ni_validation.json" \
                    "$PY" scripts/validate_emsoft_ni.py --device "$DEVICE" "${NI_ARGS[@]}" \
                    --out "$OUT/ni_validation.json"
                ;;
            training)
                run_stage training "${LIMITS[3]}" "$OUT/gpu_training.json" \
                    "$PY" "$KIT/bench_training.py" --device "$DEVICE" "${TRAINING_ARGS[@]}" \
                    --out "$OUT/gpu_training.json"
                ((LAST_RC != 0)) && ray_logs
                ;;
            engine)
                run_stage engine "${LIMITS[4]}" "$OUT/gpu_engine.json" bash -c engine
                ;;
        esac
    done
else
    for stage in "$@"; do
        SUMMARY+=("$(printf '%-10s %-16s %5ss  %s' "$stage" "NOT-RUN(install)" 0 "-")")
    done
fi

{
    echo "== gpu-session summary ($(($(date +%s) - T0))s in all) =="
    printf '%s\n' "${SUMMARY[@]}"
} | tee "$OUT/summary.txt"
ok='OK'
((DRY_RUN)) && ok='(OK|NO-GPU)' # a CPU has no GPU: that is the dry run's expected smoke result
grep -qvE "^(== |[a-z]+ +$ok )" "$OUT/summary.txt" && exit 1
exit 0
