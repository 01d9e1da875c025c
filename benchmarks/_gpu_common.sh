# Sourced by gpu_session.sh and gpu_studies.sh after they set root, out and budget: the Python, the
# device, the environment amsnet needs without its installer, and the time box (left, stamp).
py=${PYTHON:-python3}
device=${DEVICE:-cuda}  # DEVICE=cpu: a dry run on a machine without a GPU
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 AMSNET_NO_REEXEC=1 PYTHONHASHSEED=0
start=$(date +%s)
left() { echo $(( budget - ($(date +%s) - start) )); }  # seconds of the budget left
stamp() { echo "$1 $(( $(date +%s) - start ))" >> "$out/timings.txt"; }  # "<event> <seconds since start>"
: > "$out/timings.txt"
