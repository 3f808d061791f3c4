"""Reports out of the system: CSV for every report, a PNG chart for the main ones.

CSV (``to_csv``): UTF-8 with a byte-order mark, so Excel opens Chinese text right; ``\\r\\n``
line ends. One row per item of the report's list(s); nested dicts are flattened into dotted
headers (``sla.compliance``, ``satisfaction.distribution.5``).

- A report with one list (sales_trend's ``items``, contribution's ``curve``…): one row per item;
  the report's other values (``granularity``, ``totals.reviews``…) are repeated as the leading
  columns of every row.
- A report with several lists (funnel's ``lifecycle`` and ``pipeline``, service_composition's
  ``by_type``/``by_channel``/``by_status``, churn_analysis's ``by.district``…): a leading
  ``section`` column names the list each row comes from; the other values make one row of
  section ``summary``, first.
- A report with no list: one row.
- Cells: None → empty, booleans → true/false, a list of plain values → joined with "; ", anything
  deeper → JSON. A text cell that Excel would run as a formula (starting with = + - @ and not a
  number) gets a leading apostrophe.

PNG (``to_png``): matplotlib's object API on the Agg canvas (no pyplot, so no global figure is
ever left open and concurrent calls do not share state), 1000×560 px. There may be no CJK font
on the machine: the font list prefers "Noto Sans CJK SC", then "WenQuanYi Micro Hei", then
"DejaVu Sans"; missing glyphs (Chinese group names without a CJK font) draw as boxes, with the
warnings silenced, and the chart still renders. Charts: funnel (entered per stage, conversion
on the bars), sales_trend (revenue bars, the year-ago line), contribution (the curve, the
equality line, the 80/20 reference), customer_composition (customers per group),
service_composition (tickets per type), churn_analysis (churned per reason).
"""
import base64
import csv
import io
import json
import logging
import re
import warnings
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")  # before anything draws: no display on servers

from matplotlib import rc_context  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

BOM = "\ufeff"
FORMATS = {"csv": "text/csv; charset=utf-8", "png": "image/png"}
FONTS = ["Noto Sans CJK SC", "WenQuanYi Micro Hei", "DejaVu Sans"]
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# -- CSV -----------------------------------------------------------------------------------
def _is_section(value):
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _walk(report, path, summary, sections):
    """Split a report into its scalar values (dotted keys) and its lists of dicts."""
    for key, value in report.items():
        name = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict):
            _walk(value, name, summary, sections)
        elif _is_section(value):
            sections[name] = value
        else:
            summary[name] = value


def _flatten(item, path="", into=None):
    into = {} if into is None else into
    for key, value in item.items():
        name = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict):
            _flatten(value, name, into)
        else:
            into[name] = value
    return into


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        if all(not isinstance(part, (dict, list, tuple)) for part in value):
            return "; ".join(_cell(part) for part in value)
        return json.dumps(value, ensure_ascii=False, default=str)
    text = str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def _columns(rows, leading):
    columns = list(leading)
    seen = set(columns)
    for row in rows:
        for key in row:
            if key not in seen:
                seen.add(key)
                columns.append(key)
    return columns


def to_csv(name, report):
    """The report as CSV text (starting with a BOM); ``name`` is not used in the text but kept
    for symmetry with ``to_png``."""
    summary, sections = {}, {}
    _walk(report, "", summary, sections)
    if len(sections) > 1:
        rows = [{"section": "summary", **_flatten(summary)}] if summary else []
        for section, items in sections.items():
            rows.extend({"section": section, **_flatten(item)} for item in items)
        columns = _columns(rows, ["section"])
    elif sections:
        (items,) = sections.values()
        leading = _flatten(summary)
        rows = [{**leading, **_flatten(item)} for item in items]
        columns = _columns(rows, leading)
    else:
        rows = [_flatten(summary)]
        columns = _columns(rows, ())
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return buffer.getvalue()


# -- PNG -----------------------------------------------------------------------------------
@contextmanager
def _quiet_fonts():
    """CJK fonts first when installed; no warning per missing glyph or font family."""
    font_logger = logging.getLogger("matplotlib.font_manager")
    level = font_logger.level
    font_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), rc_context({"font.family": "sans-serif",
                                                    "font.sans-serif": FONTS}):
            warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
            warnings.filterwarnings("ignore", message=r"findfont: .*")
            yield
    finally:
        font_logger.setLevel(level)


def _yuan(value):
    return float(value) if value not in (None, "") else 0.0


def _no_data(axes):
    axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes,
              color="grey")


def _bars(axes, labels, values, title, ylabel, color="#4C72B0", label=None, counts=True):
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    if counts:
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    if not labels:
        _no_data(axes)
        return None
    positions = range(len(labels))
    bars = axes.bar(positions, values, color=color, label=label)
    axes.set_xticks(list(positions), [str(label) for label in labels],
                    rotation=30 if len(labels) > 5 else 0,
                    ha="right" if len(labels) > 5 else "center")
    return bars


def _funnel_chart(figure, report):
    for index, key in enumerate(("lifecycle", "pipeline")):
        axes = figure.add_subplot(1, 2, index + 1)
        stages = report.get(key) or []
        bars = _bars(axes, [s["stage"] for s in stages], [s["entered"] for s in stages],
                     f"{key.capitalize()} funnel", "entered")
        if bars is None:
            continue
        for bar, stage in zip(bars, stages):
            if stage.get("conversion") is not None:
                axes.annotate(f"{stage['conversion']:.0%}", (bar.get_x() + bar.get_width() / 2,
                                                             bar.get_height()),
                              ha="center", va="bottom", fontsize=8)


def _sales_trend_chart(figure, report):
    axes = figure.add_subplot(1, 1, 1)
    items = report.get("items") or []
    periods = [item["period"] for item in items]
    _bars(axes, periods, [_yuan(item["revenue"]) for item in items],
          f"Sales trend by {report.get('granularity', 'period')}", "revenue (CNY)",
          label="revenue", counts=False)
    if items:
        axes.plot(range(len(items)), [_yuan(item["year_ago"]) for item in items],
                  color="#DD8452", marker="o", label="a year before")
        axes.legend()


def _contribution_chart(figure, report):
    axes = figure.add_subplot(1, 1, 1)
    axes.set_title("Customer contribution (80/20)")
    axes.set_xlabel("share of customers (highest revenue first)")
    axes.set_ylabel("share of revenue")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="every customer equal")
    axes.axvline(0.2, linestyle="--", color="#C44E52", linewidth=1)
    axes.axhline(0.8, linestyle="--", color="#C44E52", linewidth=1, label="80/20 reference")
    curve = report.get("curve") or []
    if not curve:
        _no_data(axes)
    else:
        axes.plot([p["customer_share"] for p in curve], [p["revenue_share"] for p in curve],
                  color="#4C72B0", marker=".", label="customers")
        top = report.get("top_20_percent_share")
        if top is not None:
            axes.annotate(f"top 20%: {top:.0%}", (0.2, top), xytext=(0.3, max(top - 0.15, 0.05)),
                          arrowprops={"arrowstyle": "->"})
    axes.legend(loc="lower right")


def _customer_composition_chart(figure, report):
    axes = figure.add_subplot(1, 1, 1)
    items = report.get("items") or []
    _bars(axes, [item["group"] for item in items], [item["customers"] for item in items],
          f"Customers by {report.get('by', 'group')}", "customers")


def _service_composition_chart(figure, report):
    axes = figure.add_subplot(1, 1, 1)
    items = report.get("by_type") or []
    sla = report.get("sla") or {}
    compliance = sla.get("compliance")
    title = f"Service tickets by type ({report.get('tickets', 0)} tickets"
    title += f", SLA compliance {compliance:.1%})" if compliance is not None else ")"
    _bars(axes, [item["group"] for item in items], [item["tickets"] for item in items], title,
          "tickets")


def _label_and_count(entry):
    """(label, count) of a churn_analysis by_reason entry, whatever its field names."""
    label = next((entry[key] for key in ("reason", "group", "label", "name") if key in entry),
                 None)
    if label is None:
        label = next((value for value in entry.values() if isinstance(value, str)), "")
    count = next((entry[key] for key in ("customers", "churned", "count", "value")
                  if key in entry), None)
    if count is None:
        count = next((value for value in entry.values()
                      if isinstance(value, (int, float)) and not isinstance(value, bool)), 0)
    return str(label if label is not None else "unknown"), count


def _churn_analysis_chart(figure, report):
    axes = figure.add_subplot(1, 1, 1)
    reasons = report.get("by_reason") or []
    if isinstance(reasons, dict):
        pairs = [(str(label), count) for label, count in reasons.items()]
    else:
        pairs = [_label_and_count(entry) for entry in reasons]
    _bars(axes, [label for label, _ in pairs], [count for _, count in pairs],
          f"Churn by reason ({report.get('churned', 0)} churned)", "customers",
          color="#C44E52")


CHARTS = {"funnel": _funnel_chart, "sales_trend": _sales_trend_chart,
          "contribution": _contribution_chart,
          "customer_composition": _customer_composition_chart,
          "service_composition": _service_composition_chart,
          "churn_analysis": _churn_analysis_chart}


def to_png(name, report):
    """The report's chart as PNG bytes; a report without a chart → ValueError."""
    chart = CHARTS.get(name)
    if chart is None:
        raise ValueError(f"no chart for report {name!r}; charts: {', '.join(CHARTS)}")
    with _quiet_fonts():
        figure = Figure(figsize=(10, 5.6), dpi=100, layout="constrained")
        chart(figure, report)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()


# -- the RPC's answer ----------------------------------------------------------------------
def export(name, report, fmt):
    """``{content_type, filename, data}`` (``data`` base64) of ``report`` as ``fmt`` (csv or
    png). A name that is not a plain identifier, an unknown format, or a PNG of a report
    without a chart → ValueError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"bad report name {name!r}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}")
    content = to_csv(name, report).encode("utf-8") if fmt == "csv" else to_png(name, report)
    return {"content_type": FORMATS[fmt], "filename": f"{name}.{fmt}",
            "data": base64.b64encode(content).decode("ascii")}
