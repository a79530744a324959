#!/usr/bin/env bash
# A performance gate for an app of a team's own, run by its CI on every change (github-actions.yml calls it):
#   gate.sh baseline   measure the version to guard into $BASELINE (cache it between CI runs, or commit it)
#   gate.sh check      measure this version, its repeats stopping once every verdict against $BASELINE is
#                      decided, then compare: exit 0 when no figure is worse, 1 when one is, 2 when the two
#                      cannot be compared (why, in one line), 3 when one is unsure and GATE_UNSURE=fail
# The app and the lab's knobs come from the environment: APP, APP_DIR, PATHS, CPUS, MIN_CHANGE, THRESHOLDS...
# LAB is the lab's folder (default: the one holding this script); the comparison, as Markdown fit for a pull
# request, is left in $LAB_RESULTS/latest/compare.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lab=${LAB:-$(cd "$here/../.." && pwd)}
baseline=$(realpath -m "${BASELINE:-perf-baseline}")
LAB_RESULTS=$(realpath -m "${LAB_RESULTS:-perf-results}")
export LAB_RESULTS
experiment=${GATE_EXPERIMENT:-$here/gate.toml}

case "${1:-}" in
  baseline)
    make -C "$lab" bench EXPERIMENT="$experiment"
    rm -rf "$baseline"
    cp -r "$(readlink -f "$LAB_RESULTS/latest")" "$baseline"
    echo "gate: the baseline is in $baseline"
    ;;
  check)
    make -C "$lab" bench EXPERIMENT="$experiment" BASE="$baseline"
    # the lab itself, not make: make turns every failing exit into 2, and the gate's codes differ
    cd "$lab" && GATE=1 .venv/bin/python -m lab compare "$baseline" "$LAB_RESULTS/latest"
    ;;
  *)
    echo "usage: gate.sh baseline|check (read its first lines)" >&2
    exit 2
    ;;
esac
