#!/usr/bin/env python3
"""Independent reference implementation of the three example computations.

Plain Python 3, standard library only. Exact decimal arithmetic throughout
(decimal.Decimal, never float). Run from the repository root:

    python3 examples/reference.py

For each example it prints the canonical JSON output (RFC 8785 style: keys
sorted, no whitespace) and writes it to examples/<name>/expected-output.json
(no trailing newline). For income-threshold it also writes the public part to
examples/income-threshold/expected-public.json.
"""

import csv
import datetime
import decimal
import hashlib
import json
import os
import re
import sys
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
SHARED_DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))

# Generous precision so that no intermediate sum/division is ever rounded
# before the explicit quantize step.
decimal.getcontext().prec = 100
decimal.getcontext().traps[decimal.Inexact] = False

MONTHS = {
    "Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
    "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}

DECIMAL_RE = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


# ---------------------------------------------------------------- parsing

def parse_decimal(text, scale):
    """Parse a decimal literal; fewer fraction digits than `scale` are
    allowed (zero-padded), more are rejected (they would need rounding)."""
    if not DECIMAL_RE.match(text):
        raise ValueError("bad decimal literal %r" % text)
    frac = text.split(".", 1)[1] if "." in text else ""
    if len(frac) > scale:
        raise ValueError("decimal %r has more than %d fraction digits" % (text, scale))
    return Decimal(text).quantize(Decimal(1).scaleb(-scale))


def parse_iso_date(text):  # YYYY-MM-DD
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})$", text)
    if not m:
        raise ValueError("bad date %r" % text)
    return datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))


def parse_slash_date(text):  # %Y/%m/%d
    m = re.match(r"^(\d{4})/(\d{2})/(\d{2})$", text)
    if not m:
        raise ValueError("bad date %r" % text)
    return datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))


def parse_month_name_date(text):  # %b %d %Y, e.g. "Jan 1 2000"
    m = re.match(r"^([A-Z][a-z]{2}) (\d{1,2}) (\d{4})$", text)
    if not m or m.group(1) not in MONTHS:
        raise ValueError("bad date %r" % text)
    return datetime.date(int(m.group(3)), MONTHS[m.group(1)], int(m.group(2)))


def read_csv(path, expected_header):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if header != expected_header:
        raise ValueError("%s: header %r != %r" % (path, header, expected_header))
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise ValueError("%s: row %d has %d fields" % (path, i + 2, len(r)))
    return body


# ---------------------------------------------------------------- output

def render_decimal(value, scale):
    q = value.quantize(Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_UP)
    s = format(q, "f")
    if s.startswith("-") and q == 0:
        s = s[1:]  # never emit a negative zero
    return s


def mean(values, scale):
    """Exact mean rounded half away from zero to `scale` digits."""
    total = sum(values, Decimal(0))
    exact = total / Decimal(len(values))
    return exact.quantize(Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_UP)


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write(path, text):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)  # no trailing newline


# ---------------------------------------------------------------- examples

def income_threshold():
    path = os.path.join(EXAMPLES, "income-threshold", "payments.csv")
    body = read_csv(path, ["date", "amount", "kind"])
    kinds = ["salary", "freelance", "dividend", "refund"]
    lo, hi = datetime.date(2026, 1, 1), datetime.date(2026, 6, 30)
    total = Decimal("0.00")
    count = 0
    for date_s, amount_s, kind in body:
        if kind not in kinds:
            raise ValueError("unknown kind %r" % kind)
        date = parse_iso_date(date_s)
        amount = parse_decimal(amount_s, 2)
        if lo <= date <= hi and kind != "refund":
            total += amount
            count += 1
    full = {
        "meets_threshold": total >= Decimal("50000.00"),
        "payment_count": count,
        "total": render_decimal(total, 2),
    }
    public = {"meets_threshold": full["meets_threshold"], "payment_count": count}
    print("[income-threshold] rows in file: %d, rows kept: %d" % (len(body), count))
    return full, public


def stocks_summary():
    path = os.path.join(SHARED_DATA, "stocks.csv")
    body = read_csv(path, ["symbol", "date", "price"])
    labels = ["MSFT", "AMZN", "IBM", "GOOG", "AAPL"]
    cutoff = datetime.date(2010, 1, 1)
    groups = {}
    kept = 0
    short_literals = 0
    for symbol, date_s, price_s in body:
        if symbol not in labels:
            raise ValueError("unknown symbol %r" % symbol)
        date = parse_month_name_date(date_s)
        if not re.match(r"^-?\d+\.\d{2}$", price_s):
            short_literals += 1
        price = parse_decimal(price_s, 2)
        if date < cutoff:
            kept += 1
            groups.setdefault(symbol, []).append(price)
    result = []
    for symbol in labels:  # declared label order, not alphabetical
        prices = groups.get(symbol)
        if not prices:
            continue
        result.append({
            "symbol": symbol,
            "mean_price": render_decimal(mean(prices, 2), 2),
            "max_price": render_decimal(max(prices), 2),
            "months_above_100": sum(1 for p in prices if p > Decimal("100.00")),
        })
    print("[stocks-summary] rows in file: %d, rows kept by filter (date < 2010-01-01): %d"
          % (len(body), kept))
    print("[stocks-summary] price literals with fewer than 2 fraction digits: %d"
          % short_literals)
    for symbol in labels:
        if symbol in groups:
            print("[stocks-summary]   %s: %d rows, sum %s"
                  % (symbol, len(groups[symbol]), sum(groups[symbol], Decimal(0))))
    return result


def seattle_weather():
    path = os.path.join(SHARED_DATA, "seattle-weather.csv")
    header = ["date", "precipitation", "temp_max", "temp_min", "wind", "weather"]
    body = read_csv(path, header)
    labels = ["drizzle", "rain", "sun", "snow", "fog"]
    years = {}
    for date_s, precip_s, tmax_s, tmin_s, wind_s, weather in body:
        if weather not in labels:
            raise ValueError("unknown weather %r" % weather)
        date = parse_slash_date(date_s)
        precip = parse_decimal(precip_s, 1)
        parse_decimal(tmax_s, 1)
        parse_decimal(tmin_s, 1)
        wind = parse_decimal(wind_s, 1)
        g = years.setdefault(date.year, {"rows": 0, "heavy": 0, "max_wind": None})
        g["rows"] += 1
        if weather == "rain" and precip > Decimal("10.0"):
            g["heavy"] += 1
        if g["max_wind"] is None or wind > g["max_wind"]:
            g["max_wind"] = wind
    result = []
    for year in sorted(years):
        g = years[year]
        result.append({
            "year": year,
            "heavy_rain_days": g["heavy"],
            "max_wind": render_decimal(g["max_wind"], 1),
        })
    print("[seattle-weather] rows in file: %d (%s)" % (
        len(body), ", ".join("%d: %d" % (y, years[y]["rows"]) for y in sorted(years))))
    return result


def main():
    outputs = []

    full, public = income_threshold()
    outputs.append(("income-threshold", full))
    pub_text = canonical(public)
    write(os.path.join(EXAMPLES, "income-threshold", "expected-public.json"), pub_text)

    outputs.append(("stocks-summary", stocks_summary()))
    outputs.append(("seattle-weather", seattle_weather()))

    print()
    for name, obj in outputs:
        text = canonical(obj)
        write(os.path.join(EXAMPLES, name, "expected-output.json"), text)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        print("== %s (sha256 %s)" % (name, digest))
        print(text)
        if name == "income-threshold":
            print("-- public part:")
            print(pub_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
