"""Prometheus' own tool accepts deploy/prometheus, and every alert rule passes its unit tests.

`promtool` comes with Debian's `prometheus` package (.ci/run installs it); without it these
tests skip, saying so. Nothing is started: promtool only reads the files. Which metric names
the rules and dashboards may use is checked against the code in tests/test_deploy_files.py.
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
UNIT_TESTS = PROMETHEUS / "tests"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"


def promtool(*args, cwd=PROMETHEUS):
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus; .ci/run does)")
    return subprocess.run([tool, *map(str, args)], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def rule_files():
    return [PROMETHEUS / name for name in yaml.safe_load(CONFIG.read_text())["rule_files"]]


def unit_test_files():
    return sorted(UNIT_TESTS.glob("*_test.yml"))


def alerts():
    return [rule["alert"] for path in rule_files()
            for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_config():
    run = promtool("check", "config", CONFIG)
    assert run.returncode == 0, run.stdout + run.stderr


def test_promtool_accepts_the_rules():
    run = promtool("check", "rules", *rule_files())
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_alert_passes_its_unit_tests():
    assert unit_test_files(), "no unit tests in deploy/prometheus/tests"
    run = promtool("test", "rules", *unit_test_files(), cwd=UNIT_TESTS)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def test_every_alert_has_a_unit_test_that_fires_it():
    """promtool only runs the cases it is given: an alert nobody wrote a case for passes
    silently. Each alert needs a case where it fires, and one where it stays quiet."""
    fired, quiet = set(), set()
    for path in unit_test_files():
        doc = yaml.safe_load(path.read_text())
        tested = {(PROMETHEUS / "tests" / f).resolve() for f in doc["rule_files"]}
        assert tested == {p.resolve() for p in rule_files()}, \
            f"{path.name} tests other rule files than prometheus.yml loads"
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert not set(alerts()) - fired, f"never shown firing: {sorted(set(alerts()) - fired)}"
    assert not set(alerts()) - quiet, f"never shown quiet: {sorted(set(alerts()) - quiet)}"
    assert not (fired | quiet) - set(alerts()), "a unit test names an alert that does not exist"


GRAFANA_VARIABLES = re.compile(r"\$(?:__rate_interval|__interval|__range)\b")


def test_every_dashboard_query_is_valid_promql(tmp_path):
    """Each panel's expression, made a recording rule (Grafana's interval variables replaced
    by a duration), must pass `promtool check rules`, which parses it."""
    rules = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        panels = [p for top in board["panels"] for p in [top, *top.get("panels", [])]]
        for panel in panels:
            for target in panel.get("targets", []):
                expr = GRAFANA_VARIABLES.sub("5m", target["expr"])
                assert "$" not in expr, f"{path.name}: {panel['title']}: unknown variable in {expr}"
                rules.append({"record": f"dashboard:{path.stem.replace('-', '_')}:{len(rules)}",
                              "expr": expr})
    assert rules
    check = tmp_path / "dashboards.rules.yml"
    check.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    run = promtool("check", "rules", check)
    assert run.returncode == 0, run.stdout + run.stderr
