"""The bulk grant's CSV (pure): the upload read into rows, one message for a file that is
wrong as a whole, a message per bad value, the template, and the result file."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest

from dashboard.bulk_csv import CsvError, CsvGrant, grant_values, read_upload, result, template
from dashboard.rules.bulk import Amount, RowError


def rows_of(text: str, max_rows: int = 100):
    return read_upload(text.encode(), max_rows=max_rows)


def test_it_reads_rows_in_any_column_order_with_a_byte_order_mark_and_blank_lines():
    data = "\ufeffFeature, Customer ,limit,period,end_date\r\napi,acme,\"25,000\",1 month,\r\n\r\nsso,globex,,1 year,\r\n"
    first, second = read_upload(data.encode(), max_rows=10)
    assert (first.line, first.customer, first.feature, first.limit, first.period) == (2, "acme", "api", "25,000",
                                                                                      "1 month")
    assert (second.line, second.customer, second.feature, second.limit) == (4, "globex", "sso", "")


@pytest.mark.parametrize("data, message", [
    (b"", "The file is empty"),
    (b"customer,feature,limit,period,end_date\n", "a header but no rows"),
    (b"customer,feature,limit,period\nacme,api,5,1 month\n", "missing end_date"),
    (b"customer,feature,limit,period,end_date,note\nacme,api,5,1 month,,x\n", "not known: note"),
    (b"customer,customer,feature,limit,period,end_date\n", "twice: customer"),
    (b"name,amount\nacme,5\n", "must name exactly the columns customer, feature, limit, period, end_date"),
    ("customer,feature,limit,period,end_date\nacmé,api,5,1 month,\n".encode("latin-1"), "not UTF-8"),
    (b"PK\x03\x04\x00\x00binary", "not a CSV"),
    (b'customer,feature,limit,period,end_date\nacme,"api,5,1 month,\n', "not valid CSV"),
])
def test_a_file_wrong_as_a_whole_is_one_clear_message(data, message):
    with pytest.raises(CsvError, match=message):
        read_upload(data, max_rows=10)


def test_more_rows_than_a_batch_holds_is_refused():
    body = "customer,feature,limit,period,end_date\n" + "".join(f"c{i},api,5,1 month,\n" for i in range(4))
    assert len(rows_of(body, max_rows=4)) == 4
    with pytest.raises(CsvError, match="more than 3 rows: a batch holds at most 3"):
        rows_of(body, max_rows=3)


def test_a_huge_cell_is_a_message_not_a_crash():
    with pytest.raises(CsvError, match="not valid CSV"):
        rows_of("customer,feature,limit,period,end_date\n" + "x" * 200_000 + ",api,5,1 month,\n")


def values(line: str):
    [row] = rows_of("customer,feature,limit,period,end_date\n" + line)
    return grant_values(row)


def test_it_reads_limits_periods_and_end_dates():
    assert values("acme,api,\"25,000\",1 month,") == CsvGrant(Amount("to", 25000), "1 month", None)
    assert values("acme,api,Unlimited,6 months,").amount == Amount("unlimited")
    assert values("acme,sso,,LIFETIME,").amount is None
    end = datetime(2027, 4, 1, tzinfo=timezone.utc)  # inclusive: the end of March 31st
    assert values("acme,api,5,custom,2027-03-31") == CsvGrant(Amount("to", 5), "custom", end)
    assert values("acme,api,5,,2027-03-31").period == "custom"  # an end date alone is custom


@pytest.mark.parametrize("line, message", [
    ("acme,api,lots,1 month,", "Limit: “lots” is not a number. A limit is a whole number of 0 or more, e.g. 5000. "
                               "Or write “unlimited”"),
    ("acme,api,-5,1 month,", "whole number of 0 or more"),
    ("acme,api,2.5,1 month,", "whole number"),
    ("acme,api,5,fortnight,", "Period “fortnight” is not one of: 1 week, 1 month, 6 month, 1 year, lifetime"),
    ("acme,api,5,,", "Give a period"),
    ("acme,api,5,custom,", "A custom period needs an end date"),
    ("acme,api,5,1 month,2027-03-31", "An end date goes with the period “custom”"),
    ("acme,api,5,custom,31/03/2027", "is not a date: write it as YYYY-MM-DD"),
    ("acme,api,5,custom,9999-01-01", "Choose an end date before 9998-01-01"),
    (",api,5,1 month,", "Give both the customer id and the feature id"),
    ("acme,api,5,1 month,,extra", "This line has 6 cells where the header has 5"),
])
def test_a_bad_value_is_the_rows_message(line, message):
    with pytest.raises(RowError, match=message):
        values(line)


def test_the_template_reads_back_as_rows_and_the_result_is_safe_in_a_spreadsheet():
    rows = rows_of(template())
    assert [(r.customer, r.feature) for r in rows] == [("acme-corp", "api-calls"), ("globex", "seats"),
                                                      ("initech", "sso")]
    for row in rows:
        grant_values(row)  # every example row is valid
    text = result([("1", "=HYPERLINK(\"x\")", "Acme", "api", "API", "5,000 calls", "1,000", "5,000", "Granted", "",
                    "", "")])
    header, line = list(csv.reader(io.StringIO(text)))
    assert header[:3] == ["line", "customer_id", "customer_name"] and line[1] == "'=HYPERLINK(\"x\")"
