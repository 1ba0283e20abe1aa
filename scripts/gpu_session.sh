#!/usr/bin/env bash
# GPU session: install the kit (.whl/, built here by `python3 scripts/gpu_kit.py`) and run the
# named stages on the device machine, as the command of ONE device call, from the repo root:
#
#     run(command="bash scripts/gpu_session.sh smoke projection training",
#         carry=[".whl"], timeout_s=600)
#     run(command="bash scripts/gpu_session.sh ni engine", carry=[".whl"], timeout_s=600)
#
# Stages (expected time on one H100, from each script's docstring, and the stage's own limit):
#   smoke       nvidia-smi, versions, import every project module, the kit's requirements,
#               torch.cuda + a bf16 matmul, pytest tests/test_projection.py -k cuda  ~1 min (150 s)
#   projection  tests/benchmarks/gpu_projection_bench.py                             ~1 min (150 s)
#   training    tests/benchmarks/gpu_training_bench.py (Ray Train, 1 GPU worker)     ~5 min (420 s)
#   engine      tests/benchmarks/gpu_engine_bench.py --device cuda                    ~6 min (450 s)
#   ni          scripts/validate_emsoft_ni.py --device cuda (full grid; 16 s on 2 CPUs)  <1 min (240 s)
# Installing the kit takes ~10-30 s (skipped when a warm machine already has this kit).
# Fits in one 600 s call: `smoke projection training` (~7.5 min) and `ni engine` (~7 min; ni
# first: it is short and pass/fail, and the engine bench shrinks its per-material budget,
# --budget-s, to the time left). All five stages do not fit in one call.
#
# Every stage's limit is also clipped to what is left of EBSDLAKE_GPU_BUDGET_S (default 560 s
# from the start of the script), so the summary is printed before the device's 600 s kill; a
# stage left with under 20 s is skipped. A failing stage does not stop the following ones.
#
# Output under $OUT (the device returns at most 8 files): session.log (everything, via tee),
# smoke.json, gpu_projection.json, gpu_training.json, gpu_engine.json, ni_validation.json,
# summary.txt (one line per stage), and ray_logs.tgz when the training stage fails.
#
# Environment: OUT (default /tmp/gpu-session-out), EBSDLAKE_GPU_PYTHON (default python3: on the
# device, Python 3.12 with torch), EBSDLAKE_GPU_SITE (default /tmp/site), EBSDLAKE_GPU_BUDGET_S.
# With a Python other than 3.12 the cp312 kit is not installed and that Python's own packages
# are used (a dry run of the stages on a CPU machine: `smoke` then ends with "no GPU").
set -u

STAGES_KNOWN="smoke projection training engine ni"
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

PY="${EBSDLAKE_GPU_PYTHON:-python3}"
SITE="${EBSDLAKE_GPU_SITE:-/tmp/site}"
BUDGET_S="${EBSDLAKE_GPU_BUDGET_S:-560}"
T0="${_GPU_SESSION_T0}"
REPO="$(pwd)"
NI_FILE="$REPO/.whl/data/ni_mc_mp_20kv_uint8_gzip_opts9.h5"
declare -a SUMMARY=()

export PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0 RAY_DEDUP_LOGS=1 MPLBACKEND=Agg

log() { echo "[gpu-session $(($(date +%s) - T0))s] $*"; }
left_s() { echo $((BUDGET_S - ($(date +%s) - T0))); }

usage() {
    echo "usage: bash scripts/gpu_session.sh STAGE... (stages: $STAGES_KNOWN)" >&2
    exit 2
}

[[ $# -gt 0 ]] || usage
for stage in "$@"; do
    [[ " $STAGES_KNOWN " == *" $stage "* ]] || { echo "unknown stage: $stage" >&2; usage; }
done
[[ -f scripts/gpu_session.sh && -d train ]] || { echo "run from the repo root" >&2; exit 2; }

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
        log "no .whl/*.whl: build the kit here with 'python3 scripts/gpu_kit.py' and carry .whl"
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
export PY OUT T0 BUDGET_S

smoke() {
    # nvidia-smi, gpu_smoke.py, then the CUDA projection test; rc 0 / 1 failure / 2 no GPU.
    nvidia-smi || echo "(nvidia-smi failed or is missing)"
    "$PY" scripts/gpu_smoke.py --kit .whl --out "$OUT/smoke.json"
    local rc=$? test_rc
    "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_projection.py -k cuda
    test_rc=$?
    ((test_rc != 0)) && return 1
    return $rc
}

engine() {
    # The engine bench with its per-material budget shrunk to fit the stage's time.
    local budget=75 allowed=$((STAGE_LIMIT_S - 15))
    ((allowed < 4 * budget + 120)) && budget=$(((allowed - 120) / 4))
    ((budget < 10)) && budget=10
    log "engine: --budget-s $budget per material"
    "$PY" tests/benchmarks/gpu_engine_bench.py --device cuda --budget-s "$budget" \
        --out "$OUT/gpu_engine.json"
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

log "stages: $* | repo $REPO | OUT $OUT | python $PY | budget ${BUDGET_S}s"
if install_kit; then
    [[ -z "${EBSDLAKE_NI_MASTER:-}" && -f "$NI_FILE" ]] && export EBSDLAKE_NI_MASTER="$NI_FILE"
    log "PYTHONPATH=$PYTHONPATH EBSDLAKE_NI_MASTER=${EBSDLAKE_NI_MASTER:-}"
    for stage in "$@"; do
        LAST_RC=0
        case "$stage" in
            smoke)
                run_stage smoke 150 "$OUT/smoke.json" bash -c smoke
                ;;
            projection)
                run_stage projection 150 "$OUT/gpu_projection.json" \
                    "$PY" tests/benchmarks/gpu_projection_bench.py --out "$OUT/gpu_projection.json"
                ;;
            training)
                run_stage training 420 "$OUT/gpu_training.json" \
                    "$PY" tests/benchmarks/gpu_training_bench.py --out "$OUT/gpu_training.json"
                ((LAST_RC != 0)) && ray_logs
                ;;
            engine)
                run_stage engine 450 "$OUT/gpu_engine.json" bash -c engine
                ;;
            ni)
                run_stage ni 240 "$OUT/ni_validation.json" \
                    "$PY" scripts/validate_emsoft_ni.py --device cuda --out "$OUT/ni_validation.json"
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
grep -qvE '^(== |[a-z]+ +OK )' "$OUT/summary.txt" && exit 1
exit 0
