"""Reports as CSV (read back with the csv module) and as PNG charts."""
import base64
import csv
import io

import pytest

from analytics_service import export, reports

FUNNEL = {
    "lifecycle": [
        {"stage": "potential", "entered": 4, "converted": 3, "conversion": 0.75,
         "average_days": 5.33},
        {"stage": "intent", "entered": 3, "converted": 1, "conversion": 0.3333,
         "average_days": 20.0},
        {"stage": "first_time", "entered": 2, "converted": 1, "conversion": 0.5,
         "average_days": None},
        {"stage": "repeat", "entered": 1, "converted": None, "conversion": None,
         "average_days": None}],
    "pipeline": [
        {"stage": stage, "entered": 10 - index, "converted": None if stage == "won" else 9 - index,
         "conversion": None if stage == "won" else 0.9, "average_days": 2.5}
        for index, stage in enumerate(reports.PIPELINE_STAGES)]}
SALES_TREND = {"granularity": "month", "items": [
    {"period": "2025-01", "revenue": "280.00", "payments": 2, "leases_signed": 1,
     "previous": "0.00", "change": None, "year_ago": "100.00", "yoy_change": 1.8},
    {"period": "2025-02", "revenue": "400.00", "payments": 2, "leases_signed": 1,
     "previous": "280.00", "change": 0.4286, "year_ago": "0.00", "yoy_change": None}]}
SERVICE = {
    "tickets": 4,
    "by_type": [{"group": "repair", "tickets": 2, "share": 0.5},
                {"group": "complaint", "tickets": 2, "share": 0.5}],
    "by_channel": [{"group": "phone", "tickets": 4, "share": 1.0}],
    "by_status": [{"group": "closed", "tickets": 4, "share": 1.0}],
    "sla": {"breached": 2, "compliance": 0.5},
    "satisfaction": {"rated": 3, "average": 3.67,
                     "distribution": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}},
    "sentiment": {"positive": 1, "neutral": 0, "negative": 2}}
COMPOSITION = {"by": "district", "items": [{"group": "高新区", "customers": 2, "share": 0.6667},
                                           {"group": "unknown", "customers": 1,
                                            "share": 0.3333}]}
CONTRIBUTION = {"customers": 5, "revenue": "1000.00", "top_20_percent_share": 0.5,
                "curve": [{"customer_share": round(step / 20, 4),
                           "revenue_share": round(min(1.0, step / 20 * 2.5), 4)}
                          for step in range(21)]}
CHURN = {"churned": 3,
         "by_reason": [{"reason": "价格太高", "customers": 2}, {"reason": "moved", "customers": 1}],
         "by_competitor": [{"competitor": "自如", "customers": 1}],
         "by": {"district": [{"group": "高新区", "customers": 10, "churned": 2, "rate": 0.2}],
                "age_band": [{"group": "<25", "customers": 5, "churned": 1, "rate": 0.2}]}}
EMPTY = {
    "funnel": {"lifecycle": [], "pipeline": []},
    "sales_trend": {"granularity": "year", "items": []},
    "contribution": {"customers": 0, "revenue": "0.00", "top_20_percent_share": None,
                     "curve": []},
    "customer_composition": {"by": "age_band", "items": []},
    "service_composition": {"tickets": 0, "by_type": [], "by_channel": [], "by_status": [],
                            "sla": {"breached": 0, "compliance": None},
                            "satisfaction": {"rated": 0, "average": None, "distribution": {}},
                            "sentiment": {"positive": 0, "neutral": 0, "negative": 0}},
    "churn_analysis": {"churned": 0, "by_reason": [], "by_competitor": [], "by": {}}}
FULL = {"funnel": FUNNEL, "sales_trend": SALES_TREND, "contribution": CONTRIBUTION,
        "customer_composition": COMPOSITION, "service_composition": SERVICE,
        "churn_analysis": CHURN}


def read_back(text):
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:], newline="")))
    header, body = rows[0], rows[1:]
    return header, [dict(zip(header, row)) for row in body]


# -- CSV -----------------------------------------------------------------------------------
def test_a_funnel_csv_has_a_section_per_list():
    text = export.to_csv("funnel", FUNNEL)
    assert "\r\n" in text
    header, rows = read_back(text)
    assert header == ["section", "stage", "entered", "converted", "conversion", "average_days"]
    assert len(rows) == 4 + 6
    assert [row["section"] for row in rows] == ["lifecycle"] * 4 + ["pipeline"] * 6
    assert rows[0] == {"section": "lifecycle", "stage": "potential", "entered": "4",
                       "converted": "3", "conversion": "0.75", "average_days": "5.33"}
    assert rows[3]["converted"] == "" and rows[3]["conversion"] == ""  # None → empty


def test_a_one_list_report_repeats_its_other_values_on_each_row():
    header, rows = read_back(export.to_csv("sales_trend", SALES_TREND))
    assert header == ["granularity", "period", "revenue", "payments", "leases_signed",
                      "previous", "change", "year_ago", "yoy_change"]
    assert rows == [
        {"granularity": "month", "period": "2025-01", "revenue": "280.00", "payments": "2",
         "leases_signed": "1", "previous": "0.00", "change": "", "year_ago": "100.00",
         "yoy_change": "1.8"},
        {"granularity": "month", "period": "2025-02", "revenue": "400.00", "payments": "2",
         "leases_signed": "1", "previous": "280.00", "change": "0.4286", "year_ago": "0.00",
         "yoy_change": ""}]


def test_nested_values_get_dotted_headers_in_a_summary_row():
    header, rows = read_back(export.to_csv("service_composition", SERVICE))
    assert header[0] == "section"
    summary = rows[0]
    assert summary["section"] == "summary"
    assert (summary["tickets"], summary["sla.breached"], summary["sla.compliance"]) == \
        ("4", "2", "0.5")
    assert summary["satisfaction.distribution.5"] == "1"
    assert summary["sentiment.negative"] == "2"
    assert [row["section"] for row in rows[1:]] == ["by_type", "by_type", "by_channel",
                                                    "by_status"]
    assert (rows[1]["group"], rows[1]["tickets"], rows[1]["share"]) == ("repair", "2", "0.5")
    assert rows[1]["sla.breached"] == ""  # summary columns stay empty on item rows


def test_lists_inside_dicts_are_sections_too_and_chinese_survives():
    header, rows = read_back(export.to_csv("churn_analysis", CHURN))
    assert [row["section"] for row in rows] == ["summary", "by_reason", "by_reason",
                                                "by_competitor", "by.district", "by.age_band"]
    assert rows[1]["reason"] == "价格太高"
    assert rows[3]["competitor"] == "自如"
    assert rows[4] == {**{key: "" for key in header}, "section": "by.district", "group": "高新区",
                       "customers": "10", "churned": "2", "rate": "0.2"}


def test_cells_that_excel_would_run_as_formulas_are_defused():
    report = {"by": "source", "items": [
        {"group": "=HYPERLINK(\"http://x\")", "customers": 1, "share": 0.5},
        {"group": "-12.50", "customers": -1, "share": None},
        {"group": "@home", "customers": 1, "share": 0.5}]}
    _, rows = read_back(export.to_csv("customer_composition", report))
    assert [row["group"] for row in rows] == ["'=HYPERLINK(\"http://x\")", "-12.50", "'@home"]
    assert rows[1]["customers"] == "-1"


def test_cell_values():
    report = {"items": [{"ticket_id": "t1", "flag": True, "tags": ["a", "b"],
                         "reasons": [{"code": "arrears"}], "when": None}]}
    _, rows = read_back(export.to_csv("churn_warnings", report))
    assert rows == [{"ticket_id": "t1", "flag": "true", "tags": "a; b",
                     "reasons": '[{"code": "arrears"}]', "when": ""}]


def test_empty_reports_still_make_csv():
    for name, report in EMPTY.items():
        header, rows = read_back(export.to_csv(name, report))
        assert header is not None
    _, rows = read_back(export.to_csv("funnel", EMPTY["funnel"]))
    assert rows == []


def test_reports_computed_by_reports_py_export(session):
    from analytics_service import frames
    funnel = reports.funnel(frames.customers(session), frames.stage_changes(session),
                            frames.opportunities(session),
                            frames.opportunity_stage_changes(session), "2025-01-01",
                            "2025-12-31")
    _, rows = read_back(export.to_csv("funnel", funnel))
    assert len(rows) == len(reports.LIFECYCLE_STAGES) + len(reports.PIPELINE_STAGES)
    assert export.to_png("funnel", funnel).startswith(b"\x89PNG")


# -- PNG -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FULL))
def test_every_chart_renders_and_leaves_no_figure_open(name, recwarn):
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    for report in (FULL[name], EMPTY[name]):
        png = export.to_png(name, report)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(png) > 1000
    assert plt.get_fignums() == before == []
    assert not [w for w in recwarn if "Glyph" in str(w.message) or "findfont" in str(w.message)]


def test_churn_reasons_may_come_as_a_mapping():
    png = export.to_png("churn_analysis", {"churned": 3, "by_reason": {"价格": 2, "moved": 1}})
    assert png.startswith(b"\x89PNG")


def test_a_report_without_a_chart_is_refused():
    with pytest.raises(ValueError):
        export.to_png("staff_performance", {"items": []})


# -- export --------------------------------------------------------------------------------
def test_export_as_csv():
    answer = export.export("customer_composition", COMPOSITION, "csv")
    assert answer["content_type"] == "text/csv; charset=utf-8"
    assert answer["filename"] == "customer_composition.csv"
    data = base64.b64decode(answer["data"])
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM Excel looks for
    _, rows = read_back(data.decode("utf-8"))
    assert rows[0] == {"by": "district", "group": "高新区", "customers": "2", "share": "0.6667"}


def test_export_as_png():
    answer = export.export("contribution", CONTRIBUTION, "png")
    assert (answer["content_type"], answer["filename"]) == ("image/png", "contribution.png")
    assert base64.b64decode(answer["data"]).startswith(b"\x89PNG")


@pytest.mark.parametrize("name, fmt", [("funnel", "xlsx"), ("../etc/passwd", "csv"),
                                       ("Funnel", "csv"), ("", "csv"),
                                       ("staff_performance", "png"), ("nonsense", "png")])
def test_export_refuses(name, fmt):
    with pytest.raises(ValueError):
        export.export(name, FUNNEL, fmt)
