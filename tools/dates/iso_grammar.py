#!/usr/bin/env python3
"""Writes assets/date-normalizer/constraint.regex: the ISO 8601 forms the date normaliser may
print, as one regular expression, which the engine decodes under (`--constrain`).

Forms (and nothing else): the empty output ("no date"), YYYY-MM-DD, YYYY-MM-DDThh:mm,
YYYY-MM, --MM-DD, --MM-DDThh:mm and Thh:mm. Years 0001-9999, months 01-12, days within
their month, February 29 only in Gregorian leap years (any year divisible by 4, except
centuries not divisible by 400; --02-29 has no year and is allowed), hours 00-23,
minutes 00-59.

Usage: python tools/dates/iso_grammar.py [--check]   (--check: fail if the file differs)
"""

import argparse
import pathlib
import sys

OUT = pathlib.Path(__file__).resolve().parents[2] / "assets/date-normalizer/constraint.regex"

# 0001-9999: four digits, not all zero.
YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
# A leap year's four digits: xx04 ... xx96 (every century), or 0400, 0800, ... 9600.
MULTIPLE_OF_4 = r"(?:0[48]|[2468][048]|[13579][26])"
LEAP_YEAR = rf"(?:[0-9]{{2}}{MULTIPLE_OF_4}|{MULTIPLE_OF_4}00)"
MONTH = r"(?:0[1-9]|1[0-2])"
DAY_31 = r"(?:0[1-9]|[12][0-9]|3[01])"
DAY_30 = r"(?:0[1-9]|[12][0-9]|30)"
# Month-day pairs valid in every year (February up to the 28th).
MONTH_DAY = rf"(?:(?:0[13578]|1[02])-{DAY_31}|(?:0[469]|11)-{DAY_30}|02-(?:0[1-9]|1[0-9]|2[0-8]))"
DATE = rf"(?:{YEAR}-{MONTH_DAY}|{LEAP_YEAR}-02-29)"
# Without a year February 29 may be meant.
NO_YEAR = rf"--(?:{MONTH_DAY}|02-29)"
TIME = r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]"


def grammar() -> str:
    forms = [rf"{DATE}(?:{TIME})?", rf"{YEAR}-{MONTH}", rf"{NO_YEAR}(?:{TIME})?", TIME]
    # The whole group is optional: the empty output means "no date".
    return "(?:" + "|".join(forms) + ")?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the committed file differs")
    args = ap.parse_args()
    text = grammar() + "\n"
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT} is stale: run python {pathlib.Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text) - 1} characters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
