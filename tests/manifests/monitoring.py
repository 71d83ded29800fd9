#!/usr/bin/env python3
"""Checks of the chart's monitoring files, run by check.sh.

usage: monitoring.py METRICS_RS ALERTS DASHBOARD RENDERED RULES_OUT
  METRICS_RS  src/runtime/metrics.rs: the metric names the operator registers
  ALERTS      the chart's files/alerts.yaml
  DASHBOARD   the chart's files/dashboard.json
  RENDERED    `helm template` output with grafanaDashboard and prometheusRule enabled
  RULES_OUT   where to write the rendered PrometheusRule's spec, for promtool

Every query of the dashboard and every alert expression reads only metrics the operator
exports (with the suffixes Prometheus adds); the rendered ConfigMap carries the sidecar label
and the dashboard byte for byte; the rendered PrometheusRule holds exactly files/alerts.yaml.
"""
import json
import re
import sys

import yaml

PREFIX = "confluent_invitation_operator_"


def fail(msg):
    print(msg)
    sys.exit(1)


def exported(metrics_rs):
    src = open(metrics_rs).read()
    names = {PREFIX + n for n in re.findall(r'registry\.register\(\s*"(\w+)"', src)}
    if len(names) < 8:
        fail(f"could not read the registered metrics from {metrics_rs}: {sorted(names)}")
    # prometheus_client appends _total to counters; histograms expose _bucket, _sum and _count
    out = set()
    for n in names:
        out |= {n, n + "_total", n + "_bucket", n + "_sum", n + "_count"}
    return out


def metrics_in(expr):
    return set(re.findall(PREFIX + r"\w+", expr))


def main(metrics_rs, alerts, dashboard, rendered, rules_out):
    known = exported(metrics_rs)
    rules = yaml.safe_load(open(alerts))
    exprs = [(r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]]
    if len(exprs) < 5:
        fail(f"expected the five alerts, found {[a for a, _ in exprs]}")
    text = open(dashboard).read()
    board = json.loads(text)
    for key in ("title", "uid", "panels"):
        if not board.get(key):
            fail(f"dashboard has no {key}")
    for p in board["panels"]:
        if not p.get("targets"):
            fail(f"panel {p.get('title')} has no query")
        exprs += [(p["title"], t["expr"]) for t in p["targets"]]
    for where, expr in exprs:
        used = metrics_in(expr)
        if not used:
            fail(f"{where}: reads no operator metric: {expr}")
        unknown = used - known
        if unknown:
            fail(f"{where}: reads {sorted(unknown)}, which the operator does not export")
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard") == "1"]
    if len(cms) != 1:
        fail(f"expected one dashboard ConfigMap with grafana_dashboard: \"1\", found {len(cms)}")
    (body,) = cms[0]["data"].values()
    if json.loads(body) != board:
        fail("the ConfigMap's dashboard differs from files/dashboard.json")
    prs = [d for d in docs if d["kind"] == "PrometheusRule"]
    if len(prs) != 1 or prs[0]["apiVersion"] != "monitoring.coreos.com/v1":
        fail(f"expected one monitoring.coreos.com/v1 PrometheusRule, found {len(prs)}")
    if prs[0]["spec"] != rules:
        fail("the PrometheusRule's spec differs from files/alerts.yaml")
    yaml.safe_dump(prs[0]["spec"], open(rules_out, "w"))
    print(f"{len(exprs)} expressions read only exported metrics")


if __name__ == "__main__":
    if len(sys.argv) != 6:
        fail(__doc__)
    main(*sys.argv[1:])
