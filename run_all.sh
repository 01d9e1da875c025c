#!/usr/bin/env bash
# Reproduce the paper: run the notebooks in order with papermill, every table and figure into
# results/ (tables/, figures/, REPORT.md; executed notebooks in results/executed/).
#
#   ./run_all.sh                      profile full (the paper's settings) on EmoDB -> results/
#   ./run_all.sh --quick              profile quick (CI smoke test)          -> .cache/results-quick/
#   ./run_all.sh --full               profile full (the default; after --quick, switches back)
#   ./run_all.sh --verbose, -v        show each notebook's cell output as it runs (papermill --log-output)
#   ./run_all.sh --iemocap DIR        also IEMOCAP (IEMOCAP_full_release); without it its cells say
#                                     "not run: corpus not available"
#   ./run_all.sh --emodb DIR          EmoDB folder (default: $AMSNET_EMODB_DIR, else ./data/emodb,
#                                     downloaded there when absent and online)
#   ./run_all.sh --ravdess DIR        beyond the paper, a second corpus: RAVDESS on EmoBox's folds
#                                     (notebook 03's models under both recipes). Profile full: on by
#                                     default when found ($AMSNET_RAVDESS_DIR, else ./data/ravdess);
#                                     --no-ravdess leaves it out; the quick profile only with --ravdess
#   ./run_all.sh --only 02            only the notebooks whose name contains 02 (repeatable)
#   ./run_all.sh --skip-studies learning_rate,optimizer_batch   leave out studies (the default studies
#                                     of the registry amsnet_lib.studies.STUDIES: notebook 04's
#                                     hyper-parameter studies, notebook 03's studies beyond the paper)
#   ./run_all.sh --no-loso            skip every leave-one-speaker-out experiment (02, 03 and the studies)
#   ./run_all.sh --device cuda        training device (default: CUDA when present, else CPU)
#   ./run_all.sh --jobs N             full profile: first train every fold of the suite (branches,
#                                     then fusion heads) as Ray tasks on a local Ray of N CPUs
#                                     (`amsnet pretrain --fusion`; default: all cores; Ray runs as
#                                     many at once as CPUs, ~3.5 GB of RAM each on a CPU and 10 GiB
#                                     of GPU memory each with CUDA allow); the notebooks then only
#                                     read the run store. --jobs 1: everything inside the notebooks
#   ./run_all.sh --ray-address HOST:PORT   the same, on a running Ray cluster (docs/CLUSTER.md;
#                                     default $RAY_ADDRESS)
#   ./run_all.sh --no-train           train nothing: tables, figures and REPORT.md from the folds the run
#                                     store already holds (the committed runs/); the rest say "not run";
#                                     without --only/--skip-studies, summary.csv is rebuilt from them
#   ./run_all.sh --update-notebooks   execute notebooks/*.ipynb in place in the quick profile (the
#                                     outputs committed for the nbval checks of ./run_tests.sh)
#
# Resumable: finished folds are kept in the run store (runs/, or .cache/runs-quick) and features in
# the cache (.cache/features), so a rerun after an interruption redoes only unfinished work.
# The wall time of each notebook goes to <results>/timings.csv, which the report quotes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"

profile=full
emodb_dir=""
iemocap_dir=""
ravdess_dir=""
ravdess=auto
device=""
only=()
skip_studies=""
loso=1
train=True
verbose=0
update_notebooks=0
jobs=""
ray_address="${RAY_ADDRESS:-}"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) profile=quick ;;
        --full) profile=full ;;
        --emodb) emodb_dir="$(cd "${2:?--emodb needs a folder}" && pwd)"; shift ;;
        --iemocap) iemocap_dir="$(cd "${2:?--iemocap needs a folder}" && pwd)"; shift ;;
        --ravdess) ravdess_dir="$(cd "${2:?--ravdess needs a folder}" && pwd)"; ravdess=1; shift ;;
        --no-ravdess) ravdess=0 ;;
        --only) only+=("${2:?--only needs a notebook name}"); shift ;;
        --skip-studies) skip_studies="${2:?--skip-studies needs a comma-separated list}"; shift ;;
        --no-loso) loso=0 ;;
        --no-train) train=False ;;
        --device) device="${2:?--device needs a value}"; shift ;;
        --jobs) jobs="${2:?--jobs needs a number}"; shift ;;
        --ray-address) ray_address="${2:?--ray-address needs HOST:PORT}"; shift ;;
        --verbose|-v) verbose=1 ;;
        --update-notebooks) update_notebooks=1; profile=quick ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run_all.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

venv="$("$root/scripts/setup_env.sh")"
py="$venv/bin/python"
export MPLBACKEND=Agg PYTHONHASHSEED=0 AMSNET_PROFILE="$profile"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
# glibc keeps big freed tensors for reuse instead of unmapping them (FRLM trains faster:
# results/benchmarks_allocator.txt):
# see amsnet_lib/_runtime.py.
eval "$("$py" -m amsnet_lib._runtime)"
# The quick profile's tiny networks run several times faster on one intra-op thread (two threads
# spend their time synchronising, worse still on a shared machine).
[ "$profile" = quick ] && export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
[ -n "$emodb_dir" ] && export AMSNET_EMODB_DIR="$emodb_dir"
# RAVDESS (beyond the paper): where the project looks for it; in the full profile it is on when found.
if [ "$ravdess" = auto ]; then
    ravdess=0
    guess="${AMSNET_RAVDESS_DIR:-$root/data/ravdess}"
    if [ "$profile" = full ] && compgen -G "$guess/Actor_[0-9][0-9]" > /dev/null; then ravdess=1; ravdess_dir="$(cd "$guess" && pwd)"; fi
fi
[ "$ravdess" = 1 ] && [ -z "$ravdess_dir" ] && ravdess_dir="$(cd "${AMSNET_RAVDESS_DIR:-$root/data/ravdess}" 2>/dev/null && pwd || true)"
[ "$ravdess" = 1 ] && [ -z "$ravdess_dir" ] && { echo "run_all.sh: RAVDESS not found; pass --ravdess DIR" >&2; exit 2; }

if [ "$profile" = full ]; then results="$root/results"; else results="$root/.cache/results-$profile"; fi
executed="$results/executed"
mkdir -p "$executed"

corpus=emodb
[ -n "$iemocap_dir" ] && corpus=both
# The studies: the registry's default ones (amsnet_lib.studies.STUDIES) less --skip-studies.
studies="$("$py" -c '
import sys
from amsnet_lib.studies import default_studies
keep = [s for s in default_studies() if s not in set(sys.argv[1].split(","))]
print(repr(keep))' "$skip_studies")"
# RAVDESS's notebook runs only the studies of the second corpus (amsnet_lib.studies.SECOND_CORPUS_STUDIES).
ravdess_studies="$("$py" -c '
import ast, sys
from amsnet_lib.studies import SECOND_CORPUS_STUDIES
print(repr([s for s in ast.literal_eval(sys.argv[1]) if s in SECOND_CORPUS_STUDIES]))' "$studies")"

# Full profile: every fold of the whole suite first, as Ray tasks of one thread each (independent
# folds scale with the cores better than intra-op threads do: benchmarks/bench_parallel.py).
if [ "$profile" = full ] && [ "$train" = True ] && [ ${#only[@]} -eq 0 ] && [ "$update_notebooks" = 0 ]; then
    [ -z "$jobs" ] && jobs=$(nproc)  # Ray holds back what memory cannot carry (amsnet_lib.train.engine)
    if [ "$jobs" -gt 1 ] || [ -n "$ray_address" ]; then
        kept="$("$py" -c 'import ast, sys; print(",".join(ast.literal_eval(sys.argv[1])))' "$studies")"
        pre=(pretrain --studies "$kept" --threads 1 --fusion)
        if [ -n "$ray_address" ]; then where="the Ray cluster at $ray_address"; pre+=(--ray-address "$ray_address")
        else where="a local Ray of $jobs CPUs"; pre+=(--cpus "$jobs"); fi
        [ "$loso" = 0 ] && pre+=(--no-loso)
        [ -n "$device" ] && pre+=(--device "$device")
        suite_corpora=(emodb); [ -n "$iemocap_dir" ] && suite_corpora+=(iemocap); [ "$ravdess" = 1 ] && suite_corpora+=(ravdess)
        for c in "${suite_corpora[@]}"; do
            echo "== every training of the suite on $c, on $where (amsnet pretrain --fusion)"
            t0=$SECONDS
            dir_args=(); [ "$c" = iemocap ] && dir_args=(--data-dir "$iemocap_dir")
            [ "$c" = ravdess ] && dir_args=(--data-dir "$ravdess_dir")
            if ! "$py" -m amsnet_lib.cli "${pre[@]}" --corpus "$c" "${dir_args[@]}"; then
                echo "FAILED: amsnet pretrain on $c; rerun ./run_all.sh to resume (finished folds are kept)" >&2
                exit 1
            fi
            "$py" -c 'import sys; from amsnet_lib.report.timings import record_timing; record_timing(*sys.argv[1:5], float(sys.argv[5]))' \
                "$results/timings.csv" "pretrain_$c" paper "$profile" "$(( SECONDS - t0 ))"
        done
    fi
fi

# notebook protocol (in order); the report comes last and shows both protocols side by side.
plan=("00_data_prep paper" "01_branch_training paper" "02_fusion paper" "03_ablations paper" "04_hyperparameters paper")
if [ "$loso" = 1 ]; then plan+=("02_fusion loso" "03_ablations loso"); fi
# beyond the paper: RAVDESS on EmoBox's folds (a third field names the corpus of the step)
if [ "$ravdess" = 1 ]; then plan+=("03_ablations emobox ravdess"); fi
plan+=("05_report paper")

selected() {
    [ ${#only[@]} -eq 0 ] && return 0
    local pattern
    for pattern in "${only[@]}"; do [[ "$1" == *"$pattern"* ]] && return 0; done
    return 1
}

fmt_time() { printf '%dm%02ds' $(( $1 / 60 )) $(( $1 % 60 )); }

if [ "$update_notebooks" = 1 ]; then
    # The committed notebooks: executed in place, no parameters injected (the parameters cell reads
    # AMSNET_PROFILE=quick), so ./run_tests.sh compares its nbval-checked cells against a quick run.
    t_all=$SECONDS
    for nb in notebooks/0*.ipynb; do
        name="$(basename "$nb" .ipynb)"
        selected "$name" || continue
        echo "== $name (in place, profile quick)"
        t0=$SECONDS
        "$py" -m papermill "$nb" "$nb" --cwd notebooks --progress-bar --kernel python3
        "$py" -c 'import sys; from amsnet_lib.report.timings import record_timing; record_timing(*sys.argv[1:5], float(sys.argv[5]))' \
            "$results/timings.csv" "$name" paper quick "$(( SECONDS - t0 ))"
    done
    echo "notebooks updated in $(fmt_time $(( SECONDS - t_all )))"
    exit 0
fi

# --no-train over the whole plan: summary.csv is rebuilt from the experiments the notebooks read
# back, so a row no configuration names any more goes (rows of corpora and protocols not read stay).
rebuild=0
if [ "$train" = False ] && [ ${#only[@]} -eq 0 ] && [ -z "$skip_studies" ]; then
    rebuild=1
    protocols=paper; [ "$loso" = 1 ] && protocols=paper,loso
    corpora=emodb; [ -n "$iemocap_dir" ] && corpora=emodb,iemocap
    [ "$ravdess" = 1 ] && corpora="$corpora,ravdess" && protocols="$protocols,emobox"
    "$py" -c 'import sys; from amsnet_lib.report.summary import begin_summary_rebuild as b; b(sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","))' \
        "$results/tables/summary.csv" "$corpora" "$protocols"
fi

echo "amsnet run_all: profile $profile, corpus $corpus, results in ${results#"$root"/}"
t_all=$SECONDS
n_run=0
for step in "${plan[@]}"; do
    read -r name protocol step_corpus <<< "$step"
    selected "$name" || continue
    suffix=""; [ -n "$step_corpus" ] && suffix="_$step_corpus"; [ "$protocol" != paper ] && suffix="${suffix}_$protocol"
    out="$executed/$name$suffix.ipynb"
    log="$executed/$name$suffix.log"
    args=(-p corpus "${step_corpus:-$corpus}" -p protocol "$protocol" -p profile "$profile" -p results_dir "$results" -p train "$train")
    [ -n "$emodb_dir" ] && args+=(-p emodb_dir "$emodb_dir")
    [ -n "$iemocap_dir" ] && args+=(-p iemocap_dir "$iemocap_dir")
    [ -n "$device" ] && args+=(-p device "$device")
    if [ "$step_corpus" = ravdess ]; then args+=(-p ravdess_dir "$ravdess_dir" -y "studies: $ravdess_studies")
    else case "$name" in 03_ablations|04_hyperparameters) args+=(-y "studies: $studies") ;; esac; fi
    [ "$verbose" = 1 ] && args+=(--log-output)
    echo
    echo "== $name [protocol $protocol${step_corpus:+, corpus $step_corpus}] -> ${out#"$root"/}"
    t0=$SECONDS
    status=ok
    if ! "$py" -m papermill "notebooks/$name.ipynb" "$out" "${args[@]}" --cwd notebooks --progress-bar --kernel python3 \
            2>&1 | tee "$log"; then
        status=failed
    fi
    seconds=$(( SECONDS - t0 ))
    # A --no-train run only reads the run store: its minutes are not the suite's wall time.
    [ "$train" = True ] && "$py" -c 'import sys; from amsnet_lib.report.timings import record_timing; record_timing(*sys.argv[1:5], float(sys.argv[5]), sys.argv[6])' \
        "$results/timings.csv" "$name" "$protocol" "$profile" "$seconds" "$status"
    if [ "$status" = failed ]; then
        echo >&2
        echo "FAILED: notebooks/$name.ipynb [protocol $protocol] after $(fmt_time $seconds)" >&2
        cell="$(grep -m1 -o 'In \[[0-9]*\]' <(grep -m1 'Exception encountered at' "$log") || true)"
        code="$(grep -m1 -e '^----> ' "$log" || true)"
        error="$(grep -E '^[A-Za-z_.]*(Error|Exception|Interrupt)\b' "$log" | tail -n 1 || true)"
        echo "failing cell: ${cell:-unknown} of notebooks/$name.ipynb" >&2
        [ -n "$code" ] && echo "    $code" >&2
        [ -n "$error" ] && echo "    $error" >&2
        echo "executed notebook (error marked in it): ${out#"$root"/}; full log: ${log#"$root"/}" >&2
        echo "rerun ./run_all.sh to resume: finished folds are kept." >&2
        exit 1
    fi
    n_run=$(( n_run + 1 ))
    echo "== $name [protocol $protocol] done in $(fmt_time $seconds)"
    # the full run's headline goes into the README (the quick profile's numbers mean nothing)
    if [ "$name" = 05_report ] && [ "$profile" = full ]; then
        "$py" -m scripts.update_docs --results "$results"
    fi
done
[ "$n_run" -eq 0 ] && { echo "run_all.sh: --only ${only[*]} matches no notebook" >&2; exit 2; }
if [ "$rebuild" = 1 ]; then
    "$py" -c '
import sys
from amsnet_lib.report.summary import SUMMARY_KEYS, end_summary_rebuild
gone = end_summary_rebuild(sys.argv[1])
print(f"summary.csv rebuilt from the run store: {len(gone)} row(s) of experiments no notebook reads any more dropped")
for row in gone[SUMMARY_KEYS].itertuples(index=False):
    print("    " + ", ".join(map(str, row)))' "$results/tables/summary.csv"
fi
echo
echo "all done: $n_run notebook runs in $(fmt_time $(( SECONDS - t_all ))); results in ${results#"$root"/}/"
[ -f "$results/REPORT.md" ] && echo "report: ${results#"$root"/}/REPORT.md"
