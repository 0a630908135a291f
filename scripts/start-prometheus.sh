#!/usr/bin/env bash
# Runs Debian's Prometheus in the foreground for agave (exec: the pid you get is Prometheus's).
#
#   scripts/start-prometheus.sh                       # monitoring/prometheus/prometheus.yml,
#                                                     # UI and API on 127.0.0.1:9090
#   scripts/start-prometheus.sh --listen 127.0.0.1:19090 --storage /tmp/p \
#       --scrape-interval 1s --target 127.0.0.1:9464  # a generated one-job config (the tests)
#
# Options: --listen ADDR:PORT, --storage DIR (default: a new temporary directory), --config FILE,
# --target HOST:PORT (repeatable; writes <storage>/prometheus.yml and ignores --config),
# --file-sd PATTERN (repeatable, like --target: file-based discovery of the targets files that
# exporters write, e.g. /scratch/runs/prometheus_targets/*.json),
# --scrape-interval DURATION (with --target or --file-sd; default 5s).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
listen=127.0.0.1:9090
storage=
config=$root/monitoring/prometheus/prometheus.yml
interval=5s
targets=()
file_sd=()
while (($#)); do
  case $1 in
    --listen) listen=$2; shift 2 ;;
    --storage) storage=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --target) targets+=("$2"); shift 2 ;;
    --file-sd) file_sd+=("$2"); shift 2 ;;
    --scrape-interval) interval=$2; shift 2 ;;
    *) echo "start-prometheus: unknown argument '$1' (see the comment at the top)" >&2; exit 2 ;;
  esac
done
prometheus=$(command -v prometheus || true)
if [[ -z $prometheus ]]; then
  echo "start-prometheus: no prometheus on PATH (Debian: apt-get install prometheus)" >&2
  exit 3
fi
[[ -n $storage ]] || storage=$(mktemp -d -t agave-prometheus.XXXXXX)
mkdir -p "$storage"
if ((${#targets[@]} + ${#file_sd[@]})); then
  config=$storage/prometheus.yml
  {
    echo "global:"
    echo "  scrape_interval: $interval"
    echo "  evaluation_interval: $interval"
    echo "scrape_configs:"
    echo "  - job_name: agave"
    if ((${#targets[@]})); then
      echo "    static_configs:"
      echo "      - targets:"
      for t in "${targets[@]}"; do echo "          - $t"; done
    fi
    if ((${#file_sd[@]})); then
      echo "    file_sd_configs:"
      echo "      - refresh_interval: $interval"
      echo "        files:"
      for f in "${file_sd[@]}"; do echo "          - $f"; done
    fi
  } >"$config"
fi
echo "start-prometheus: $listen, config $config, storage $storage" >&2
exec "$prometheus" --config.file="$config" --storage.tsdb.path="$storage/data" \
  --web.listen-address="$listen" --log.level=warn
