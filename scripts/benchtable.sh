#!/usr/bin/env bash
# Prints the benchmark lines of `go test -bench` output (file $1) as a Markdown table.
set -euo pipefail
awk '
/^Benchmark/ {
  name=$1; sub(/-[0-9]+$/, "", name)
  ms=""; mb=""; allocs=""; extra=""
  for (i = 3; i < NF; i += 2) {
    v=$i; u=$(i+1)
    if (u == "ns/op") ms = sprintf("%.1f", v/1e6)
    else if (u == "B/op") mb = sprintf("%.1f", v/1048576)
    else if (u == "allocs/op") allocs = v
    else extra = extra sprintf("%s %s ", v, u)
  }
  rows[++n] = sprintf("| %s | %s | %s | %s | %s |", name, ms, mb, allocs, extra)
}
END {
  print "| benchmark | ms/op | MiB/op | allocs/op | other |"
  print "|---|---:|---:|---:|---|"
  for (i = 1; i <= n; i++) print rows[i]
}' "$1"
