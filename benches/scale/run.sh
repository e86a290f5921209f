#!/usr/bin/env bash
# Times `palisade apply` (release) on generated resources with the corpus's pod-security and
# best-practices policy sets, and reports wall time and peak memory (GNU time).
#
# Usage: benches/scale/run.sh [COUNT...]   (default: 3000 50000)
# The inputs are generated into a temporary folder and deleted afterwards; they are never
# committed. The figures in the report come from this script.
set -euo pipefail
cd "$(dirname "$0")/../.."

counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(3000 50000)
corpus=../shared/corpus/kyverno-policies
target=${CARGO_TARGET_DIR:-target}

if [ ! -x /usr/bin/time ]; then
  echo "error: GNU time (/usr/bin/time) is needed for the peak memory figure" >&2
  exit 2
fi
cargo build --release -p palisade >&2
bin="$target/release/palisade"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "cores: $(nproc)"
for n in "${counts[@]}"; do
  python3 benches/scale/generate.py "$n" > "$work/resources-$n.yaml"
  size=$(du -h "$work/resources-$n.yaml" | cut -f1)
  # One warm-up run so the page cache holds the policies and the input.
  "$bin" apply "$corpus/pod-security" "$corpus/best-practices" --resource "$work/resources-$n.yaml" > /dev/null 2>&1 || true
  /usr/bin/time -v "$bin" apply "$corpus/pod-security" "$corpus/best-practices" \
    --resource "$work/resources-$n.yaml" > "$work/out-$n.txt" 2> "$work/time-$n.txt" || true
  wall=$(grep 'Elapsed (wall clock)' "$work/time-$n.txt" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$work/time-$n.txt" | awk '{print $NF}')
  cpu=$(grep 'Percent of CPU' "$work/time-$n.txt" | awk '{print $NF}')
  echo "$n resources ($size): wall $wall, peak RSS $((rss / 1024)) MiB, CPU $cpu; $(tail -n 1 "$work/out-$n.txt")"
done
