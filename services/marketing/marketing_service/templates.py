"""Personalised message templates: ``{name}您好，{district}的新房源...``.

A placeholder names a field of the customer (``vocabulary.CUSTOMER_FIELDS``) or of the occasion
(a care rule's ``{years}``, ``{lease_end_date}``...). Only plain names are allowed: no attribute
access, indexing, conversions or format specs, so a template can never reach into Python objects.
``{{`` and ``}}`` are literal braces. An unknown placeholder is refused when the template is
saved; a customer who lacks a named field gets no message (skipped ``missing_field``), never a blank.
"""
import functools
import re
import string

NAME = re.compile(r"^[a-z_]+$")
MAX_LENGTH = 2000
_formatter = string.Formatter()


def placeholders(template):
    """The field names a template uses; ValueError describing what is wrong with it."""
    try:
        parts = list(_formatter.parse(template))
    except ValueError as exc:
        raise ValueError(f"is not a valid template: {exc} (write {{{{ and }}}} for braces)") from None
    names = []
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if not NAME.match(field) or spec or conversion:
            raise ValueError(f"placeholder {{{field}}} must be a plain field name like {{name}}")
        names.append(field)
    return names


def problems(template, allowed):
    """Messages for a template naming fields outside ``allowed`` (empty when it is fine)."""
    try:
        unknown = sorted(set(placeholders(template)) - set(allowed))
    except ValueError as exc:
        return [str(exc)]
    if unknown:
        return [f"unknown placeholder {{{name}}}: use one of "
                + ", ".join(f"{{{a}}}" for a in allowed) for name in unknown]
    return []


class MissingField(Exception):
    pass


@functools.lru_cache(maxsize=256)
def _parts(template):
    return tuple((literal, field) for literal, field, _spec, _conv in _formatter.parse(template))


def render(template, values):
    """The message for ``values``; MissingField naming the first placeholder with no value."""
    out = []
    for literal, field in _parts(template):
        out.append(literal)
        if field is not None:
            value = values.get(field)
            if value is None or value == "":
                raise MissingField(field)
            out.append(str(value))
    return "".join(out)
