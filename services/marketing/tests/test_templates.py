"""Message templates: plain ``{field}`` placeholders only, literal ``{{ }}``, no blanks."""
import pytest

from marketing_service import templates
from marketing_service import vocabulary as v


def test_placeholders_in_order():
    assert templates.placeholders("{name}您好，{district}的新房源，{name}") == [
        "name", "district", "name"]
    assert templates.placeholders("没有占位符") == []


def test_an_unknown_placeholder_names_it_and_the_allowed_ones():
    [problem] = templates.problems("{name}您好 {nickname}", v.CUSTOMER_FIELDS)
    assert problem.startswith("unknown placeholder {nickname}: use one of {name}, {mobile}")
    assert "{member_tier}" in problem
    assert templates.problems("{name}您好", v.CUSTOMER_FIELDS) == []


@pytest.mark.parametrize("template", [
    "{name.__class__}", "{name.__class__.__mro__}", "{0}", "{}", "{name[0]}", "{name!r}",
    "{name!s}", "{name:>10}", "{name:{district}}", "{Name}",
])
def test_anything_but_a_plain_field_name_is_refused(template):
    with pytest.raises(ValueError, match="must be a plain field name"):
        templates.placeholders(template)
    [problem] = templates.problems(template, v.CUSTOMER_FIELDS)
    assert "must be a plain field name" in problem


@pytest.mark.parametrize("template", ["{name", "name}", "{name}}"])
def test_unbalanced_braces_are_refused(template):
    with pytest.raises(ValueError, match="write {{ and }} for braces"):
        templates.placeholders(template)


def test_doubled_braces_are_literal():
    assert templates.placeholders("{{literal}} {name}") == ["name"]
    assert templates.render("{{literal}} {name}", {"name": "王"}) == "{literal} 王"


def test_render_fills_each_placeholder():
    body = templates.render("{name}您好，{district}，还剩{days_left}天",
                            {"name": "王小明", "district": "高新区", "days_left": 0})
    assert body == "王小明您好，高新区，还剩0天"


@pytest.mark.parametrize("values", [{"name": "王"}, {"name": "王", "district": None},
                                    {"name": "王", "district": ""}])
def test_render_refuses_a_missing_field_naming_it(values):
    with pytest.raises(templates.MissingField) as error:
        templates.render("{name}您好，{district}的新房源", values)
    assert error.value.args == ("district",)
