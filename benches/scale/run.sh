#!/usr/bin/env bash
# Times `palisade apply` (release) on generated resources with the corpus's pod-security and
# best-practices policy sets, and reports wall time, CPU time and peak memory (GNU time), with
# the machine's load average at the time (other work on the machine inflates wall time).
#
# Usage: benches/scale/run.sh [COUNT...]   (default: 3000 50000)
# SCALE_ARGS adds options to the timed command, e.g. SCALE_ARGS="--policy-report" or
# SCALE_ARGS="--output-format sarif" to measure an output that holds every result.
# The inputs are generated into a temporary folder and deleted afterwards; they are never
# committed. The figures in the report come from this script.
set -euo pipefail
cd "$(dirname "$0")/../.."

counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(3000 50000)
corpus=../shared/corpus/kyverno-policies
read -r -a extra <<< "${SCALE_ARGS:-}"
target=${CARGO_TARGET_DIR:-target}

if [ ! -x /usr/bin/time ]; then
  echo "error: GNU time (/usr/bin/time) is needed for the peak memory figure" >&2
  exit 2
fi
cargo build --release -p palisade >&2
bin="$target/release/palisade"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "cores: $(nproc); $(uptime | sed 's/.*load/load/')"
for n in "${counts[@]}"; do
  python3 benches/scale/generate.py "$n" > "$work/resources-$n.yaml"
  size=$(du -h "$work/resources-$n.yaml" | cut -f1)
  # One warm-up run so the page cache holds the policies and the input.
  "$bin" apply "$corpus/pod-security" "$corpus/best-practices" --resource "$work/resources-$n.yaml" > /dev/null 2>&1 || true
  /usr/bin/time -v "$bin" apply "$corpus/pod-security" "$corpus/best-practices" \
    --resource "$work/resources-$n.yaml" "${extra[@]}" > "$work/out-$n.txt" 2> "$work/time-$n.txt" || true
  wall=$(grep 'Elapsed (wall clock)' "$work/time-$n.txt" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$work/time-$n.txt" | awk '{print $NF}')
  cpu=$(grep 'Percent of CPU' "$work/time-$n.txt" | awk '{print $NF}')
  user=$(grep 'User time' "$work/time-$n.txt" | awk '{print $NF}')
  sys=$(grep 'System time' "$work/time-$n.txt" | awk '{print $NF}')
  echo "$n resources ($size): wall $wall, user ${user} s, system ${sys} s (CPU $cpu), peak RSS $((rss / 1024)) MiB; load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "  $(tail -n 1 "$work/out-$n.txt" | cut -c1-200)"
done
