"""CSV import of customers (UTF-8, a BOM tolerated).

The header names the columns: the record's field names (``name``, ``mobile``, ``email``, …) or
their Chinese labels (姓名, 手机, 邮箱, …). ``tags`` are separated by ``;`` or ``|``;
``consent_sms``/``consent_email``/… take yes/no/true/false/1/0/是/否. A row whose mobile is
already known updates that customer (blank cells leave fields unchanged); other rows create
customers. Each row is validated and written in its own savepoint: a bad row is reported with
its line number and leaves no trace, good rows are kept.
"""
import csv
import io

from crm_kit.errors import CrmError
from customer_service import customers
from customer_service.models import Customer

ALIASES = {
    "姓名": "name", "名称": "name", "手机": "mobile", "手机号": "mobile", "电话": "mobile",
    "邮箱": "email", "微信": "wechat_id", "性别": "gender", "生日": "birthday",
    "出生日期": "birthday", "身份证号": "id_number", "职业": "occupation", "行业": "industry",
    "单位": "employer", "工作单位": "employer", "学历": "education", "收入": "income_band",
    "籍贯": "hometown", "城市": "city", "区域": "district", "来源": "source",
    "负责人": "owner_id", "标签": "tags", "类型": "kind",
}
GENDER_WORDS = {"男": "male", "女": "female", "m": "male", "f": "female"}
TRUE_WORDS = {"1", "true", "yes", "y", "是"}
FALSE_WORDS = {"0", "false", "no", "n", "否"}
COLUMNS = set(customers.PROFILE_FIELDS) | {"tags"}
MAX_ROWS = 50_000


def _column(header):
    header = header.strip()
    return ALIASES.get(header, header.lower())


def _row_to_data(row):
    data, consent, custom = {}, {}, {}
    for header, raw in row.items():
        if header is None:
            raise ValueError("the row has more cells than the header")
        value = (raw or "").strip()
        if value == "":
            continue
        column = _column(header)
        if column == "tags":
            data["tags"] = [t.strip() for t in value.replace("|", ";").split(";") if t.strip()]
        elif column == "gender":
            data["gender"] = GENDER_WORDS.get(value.lower(), value.lower())
        elif column.startswith("consent_"):
            word = value.lower()
            if word not in TRUE_WORDS | FALSE_WORDS:
                raise ValueError(f"{header}: say yes or no")
            consent[column[len("consent_"):]] = word in TRUE_WORDS
        elif column.startswith("custom."):
            custom[column[len("custom."):]] = value
        elif column in COLUMNS:
            data[column] = value
        else:
            raise ValueError(f"unknown column {header!r}")
    if consent:
        data["consent"] = consent
    if custom:
        data["custom_fields"] = custom
    return data


def _message(error):
    if isinstance(error, CrmError):
        details = error.details
        if details and isinstance(details, dict) and error.http_status == 422:
            return "; ".join(f"{field}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
                             for field, msgs in details.items())
        return error.message
    return str(error)


def _rows(reader, errors):
    """The rows of ``reader`` up to one that is not CSV (a field over the csv module's size
    limit …): that one is reported in ``errors`` and the rest of the file left."""
    try:
        yield from reader
    except csv.Error as exc:
        # line_num counts the lines read whole: the one that failed is the next
        errors.append({"row": reader.line_num + 1, "message": f"not CSV from here on: {exc}"})


def import_csv(session, text, actor, owner_ids=None):
    """Import the rows. With ``owner_ids`` (a scoped caller's team, from the gateway; ``None``
    in it: no owner) a row whose mobile belongs to a customer of another owner is refused,
    not applied."""
    if text.startswith("\ufeff"):
        text = text[1:]
    # newline="": the csv module reads \r, \n and \r\n itself (a lone \r is a line end)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        if not reader.fieldnames:
            return {"created": 0, "updated": 0,
                    "errors": [{"row": 1, "message": "the file is empty"}]}
    except csv.Error as exc:
        return {"created": 0, "updated": 0,
                "errors": [{"row": 1, "message": f"not a CSV file: {exc}"}]}
    unknown = [h for h in reader.fieldnames if h is not None and not (
        _column(h) in COLUMNS or _column(h).startswith(("consent_", "custom.")))]
    if unknown:
        return {"created": 0, "updated": 0,
                "errors": [{"row": 1, "message": f"unknown columns: {', '.join(unknown)}"}]}
    created = updated = 0
    errors = []
    for index, row in enumerate(_rows(reader, errors)):
        line = reader.line_num
        if index >= MAX_ROWS:
            errors.append({"row": line, "message": f"stopped: at most {MAX_ROWS} rows per file"})
            break
        try:
            data = _row_to_data(row)
            existing = session.query(Customer.id, Customer.owner_id).filter(
                Customer.mobile == data.get("mobile")).first() if data.get("mobile") else None
            if existing and owner_ids is not None and existing.owner_id not in owner_ids:
                raise ValueError("mobile: belongs to a customer outside your team")
            existing = existing.id if existing else None
            with session.begin_nested():
                if existing:
                    customers.update(session, existing, data, actor)
                    updated += 1
                else:
                    customers.create(session, data, actor)
                    created += 1
        except (CrmError, ValueError) as exc:
            errors.append({"row": line, "message": _message(exc)})
    return {"created": created, "updated": updated, "errors": errors}
