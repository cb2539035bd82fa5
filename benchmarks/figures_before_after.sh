#!/usr/bin/env bash
# The figures that a refactor must leave identical (issue 13): run with the code of one commit, then another, then compare with benchmarks/compare_figures.py BEFORE AFTER.
# PATCH_LFW: a Patch-LFW folder (xaiface bench patch-lfw-generate --out DIR).
# usage: PATCH_LFW=DIR benchmarks/figures_before_after.sh /abs/checkout/src /abs/OUT   (the code of that checkout; .venv of this one)
set -u
SRC=$1; OUT=$2; mkdir -p "$OUT"
X() { PYTHONPATH=$SRC OMP_NUM_THREADS=1 ${PYTHON:-.venv/bin/python} -m xaiface.cli "$@"; }
cd "$(dirname "$0")/.."
t0=$(date +%s)
X eval lfw --out "$OUT/lfw" --quiet > "$OUT/lfw.log" 2>&1; echo "lfw rc=$? $(( $(date +%s)-t0 ))s" >> "$OUT/times.txt"
t0=$(date +%s)
X bench patch-lfw --methods random,xssab --pairs 100 --dataset ${PATCH_LFW:?set PATCH_LFW to a Patch-LFW folder} --out "$OUT/bench" --threads 1 --quiet > "$OUT/bench.log" 2>&1; echo "bench rc=$? $(( $(date +%s)-t0 ))s" >> "$OUT/times.txt"
t0=$(date +%s)
X study factors --factor jpeg --levels 50 --folds 1,2 --drift-pairs 20 --out "$OUT/jpeg50" --quiet > "$OUT/jpeg50.log" 2>&1; echo "jpeg50 rc=$? $(( $(date +%s)-t0 ))s" >> "$OUT/times.txt"
t0=$(date +%s)
X eval soft-biometrics --sets utkface --limit 500 --out "$OUT/soft" --threads 1 --quiet > "$OUT/soft.log" 2>&1; echo "soft rc=$? $(( $(date +%s)-t0 ))s" >> "$OUT/times.txt"
echo done >> "$OUT/times.txt"
