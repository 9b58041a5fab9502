"""Synthetic data for the seqbridge date normaliser (en / fr / de / es -> ISO 8601).

Each example is (source, target).  The target is "YYYY-MM-DD", or
"YYYY-MM-DDTHH:MM" when the source carries a time of day.  Dates are drawn
uniformly over the years 1000-2999 (with extra weight on 1900-2099), valid for
the proleptic Gregorian calendar; the weekday, when written, is the one
Python's datetime computes for that date.

Grammar, informally ([x] optional, {a|b} alternatives, D day, M month, Y year,
W weekday, T time).  D is the bare number (sometimes zero-padded) or the
language's ordinal form; M is the full name or a common abbreviation (with or
without its period, sometimes without accents); W is the full name or a common
abbreviation.

  en  [on] [W[,] ] D[st|nd|rd|th] M[,] Y          28 November 2026, 28th Nov. 2026
      [on] [W[,] ] [the] Dth of M[,] Y            Saturday the 28th of November, 2026
      [on] [W[,] ] M D[th][,] Y                   Saturday, November 28, 2026
      D-Mon-Y                                     28-Nov-2026
      + [{ at |, | |, at }T]   or, rarely,  T on DATE
      T: 12-hour  h[:.]mm[ ]{am|pm|a.m.|p.m.|AM|PM|A.M.|P.M.}, h{am|pm} (whole hours),
         noon; 24-hour  H:mm / HH:mm
  fr  [le] [W[,] ] D M Y   (D = "1er" for the first, or "1")   le samedi 28 novembre 2026
      + [{ à |, à | |, | - }T]
      T: Hh, HhMM, H h MM, HH:MM, H heures, h[hMM] {du matin|de l'après-midi|du soir}, midi
  de  [am] [W, [{den|dem|der} ]] D. M Y  (the dot after D is sometimes dropped)
                                                  Samstag, den 28. November 2026
      + [{ um |, um |, | | - }T]
      T: HH:MM [Uhr], H.MM Uhr, H Uhr
  es  [el] [W[,] ] D de M {de|del} Y   (D = 1, 1º, 1.º, 1ro or primero for the first)
      D M. Y  (abbreviated month without "de")    el sábado 28 de noviembre de 2026
      + [{ a las | a la |, a las |, | | - }T]   ("a la" exactly for 1 o'clock)
      T: H:MM [h|hs], H.MM h, h:MM {a. m.|p. m.|am|pm|a.m.|p.m.},
         h[:MM] {de la mañana|de la tarde|de la noche}

  any YYYY-MM-DD[{T| }HH:MM]  (3% of examples: ISO input passes through unchanged)

A time without am/pm (or a day-period phrase) is always read as 24-hour.  The
12-hour forms map 12 am -> 00, 12 pm -> 12, 1-11 pm -> 13-23.

That is the "written" category (make_written_v1, the first model's whole
distribution).  dates_forms.py adds what people type besides: numeric dates
(03/04/2020, read day-first unless the source starts with the <mdy> token),
two-digit years, partial dates, times alone and text with no date; make_example
draws a category, then a form of it.

Noise applied on top: UPPER / lower / Title Case / Sentence case; doubled
spaces, leading/trailing spaces, a trailing period, commas dropped.

Usage:
    python tools/dates/dates_data.py --n 20 --seed 1     # print samples
"""

from __future__ import annotations

import argparse
import datetime as _dt
import random
import string

LANGS = ("en", "fr", "de", "es")

# --------------------------------------------------------------------------
# Vocabulary tables
# --------------------------------------------------------------------------

EN_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
EN_WEEKDAYS_ABBR = [["Mon"], ["Tue", "Tues"], ["Wed"], ["Thu", "Thur", "Thurs"], ["Fri"], ["Sat"], ["Sun"]]
EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July",
             "August", "September", "October", "November", "December"]
EN_MONTHS_ABBR = [["Jan"], ["Feb"], ["Mar"], ["Apr"], ["May"], ["Jun"], ["Jul"],
                  ["Aug"], ["Sep", "Sept"], ["Oct"], ["Nov"], ["Dec"]]

FR_WEEKDAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
FR_WEEKDAYS_ABBR = [["lun."], ["mar."], ["mer."], ["jeu."], ["ven."], ["sam."], ["dim."]]
FR_MONTHS = [["janvier"], ["février", "fevrier"], ["mars"], ["avril"], ["mai"], ["juin"],
             ["juillet"], ["août", "aout"], ["septembre"], ["octobre"], ["novembre"],
             ["décembre", "decembre"]]
FR_MONTHS_ABBR = [["janv.", "janv"], ["févr.", "févr", "fév.", "fevr."], ["mars"], ["avr.", "avr"],
                  ["mai"], ["juin"], ["juil.", "juil"], ["août"], ["sept.", "sept"],
                  ["oct.", "oct"], ["nov.", "nov"], ["déc.", "déc", "dec."]]

DE_WEEKDAYS = ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"]
DE_WEEKDAYS_ABBR = [["Mo."], ["Di."], ["Mi."], ["Do."], ["Fr."], ["Sa."], ["So."]]
DE_MONTHS = [["Januar", "Jänner"], ["Februar"], ["März", "Maerz"], ["April"], ["Mai"], ["Juni"],
             ["Juli"], ["August"], ["September"], ["Oktober"], ["November"], ["Dezember"]]
DE_MONTHS_ABBR = [["Jan.", "Jan"], ["Feb.", "Feb"], ["Mär.", "Mär", "Mrz."], ["Apr.", "Apr"],
                  ["Mai"], ["Jun.", "Jun"], ["Jul.", "Jul"], ["Aug.", "Aug"],
                  ["Sep.", "Sept.", "Sep"], ["Okt.", "Okt"], ["Nov.", "Nov"], ["Dez.", "Dez"]]

ES_WEEKDAYS = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"]
ES_WEEKDAYS_ABBR = [["lun."], ["mar."], ["mié."], ["jue."], ["vie."], ["sáb."], ["dom."]]
ES_MONTHS = [["enero"], ["febrero"], ["marzo"], ["abril"], ["mayo"], ["junio"], ["julio"],
             ["agosto"], ["septiembre", "setiembre"], ["octubre"], ["noviembre"], ["diciembre"]]
ES_MONTHS_ABBR = [["ene."], ["feb."], ["mar."], ["abr."], ["may."], ["jun."], ["jul."],
                  ["ago."], ["sep.", "sept."], ["oct."], ["nov."], ["dic."]]


def _non_ascii_chars() -> set[str]:
    chars: set[str] = set()
    tables = [FR_WEEKDAYS, FR_MONTHS, FR_MONTHS_ABBR, DE_MONTHS, DE_MONTHS_ABBR,
              ES_WEEKDAYS, ES_WEEKDAYS_ABBR, ES_MONTHS, ES_MONTHS_ABBR]
    extra = "º ª à après-midi mañana"  # strings in the time grammar
    for table in tables:
        for item in table:
            for s in (item if isinstance(item, list) else [item]):
                chars.update(s)
    chars.update(extra)
    chars = {c for c in chars if ord(c) > 127}
    chars |= {c.upper() for c in chars if len(c.upper()) == 1}
    chars |= {c.lower() for c in chars if len(c.lower()) == 1}
    return chars


def vocab_chars() -> list[str]:
    """Every character the generator can emit: printable ASCII + the accented
    letters of the tables (both cases) + a few common Latin-1 letters."""
    ascii_chars = [c for c in string.printable if c not in "\t\n\r\x0b\x0c"]
    extra = set("áéíóúàèìòùâêîôûäëïöüÿçñœæßÁÉÍÓÚÀÈÌÒÙÂÊÎÔÛÄËÏÖÜÇÑŒÆºª¿¡€«»°")
    return ascii_chars + sorted(_non_ascii_chars() | extra)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def _pick(rng: random.Random, weighted):
    """weighted: list of (weight, value)."""
    total = sum(w for w, _ in weighted)
    r = rng.random() * total
    for w, v in weighted:
        r -= w
        if r < 0:
            return v
    return weighted[-1][1]


def _en_ordinal(d: int) -> str:
    if 10 <= d % 100 <= 20:
        suf = "th"
    else:
        suf = {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return f"{d}{suf}"


def _day_num(rng: random.Random, d: int) -> str:
    if d < 10 and rng.random() < 0.12:
        return f"{d:02d}"
    return str(d)


def _to12(hour: int) -> int:
    h = hour % 12
    return 12 if h == 0 else h


def random_date(rng: random.Random) -> _dt.date:
    if rng.random() < 0.3:
        year = rng.randint(1900, 2099)
    else:
        year = rng.randint(1000, 2999)
    month = rng.randint(1, 12)
    # Over-sample the days whose spelling is special (1st, 2nd, 3rd, 1er, 1º...).
    if rng.random() < 0.12:
        day = rng.choice([1, 1, 2, 3, 21, 22, 23, 31])
    else:
        day = rng.randint(1, 31)
    while True:
        try:
            return _dt.date(year, month, day)
        except ValueError:
            day -= 1


def random_time(rng: random.Random) -> tuple[int, int]:
    hour = rng.randint(0, 23)
    if rng.random() < 0.35:
        minute = rng.choice([0, 0, 0, 15, 30, 45])
    else:
        minute = rng.randint(0, 59)
    return hour, minute


# --------------------------------------------------------------------------
# English
# --------------------------------------------------------------------------

def _en_weekday(rng, wd):
    if rng.random() < 0.7:
        return EN_WEEKDAYS[wd]
    a = rng.choice(EN_WEEKDAYS_ABBR[wd])
    return a + "." if rng.random() < 0.4 else a


def _en_month(rng, m):
    if rng.random() < 0.6:
        return EN_MONTHS[m - 1]
    a = rng.choice(EN_MONTHS_ABBR[m - 1])
    return a + "." if (a != "May" and rng.random() < 0.45) else a


def _en_time(rng, hour, minute):
    """Returns (text, kind) with kind 'plain' or 'noon'."""
    if hour == 12 and minute == 0 and rng.random() < 0.15:
        return rng.choice(["noon", "12 noon", "midday"])
    if rng.random() < 0.6:  # 12-hour clock
        h = _to12(hour)
        pm = hour >= 12
        marker = _pick(rng, [(3, ("am", "pm")), (2, ("AM", "PM")), (2, ("a.m.", "p.m.")),
                             (1, ("A.M.", "P.M.")), (0.5, ("a.m", "p.m")), (0.5, ("Am", "Pm"))])
        marker = marker[1] if pm else marker[0]
        sp = " " if rng.random() < 0.55 else ""
        if minute == 0 and rng.random() < 0.5:
            return f"{h}{sp}{marker}"
        sep = ":" if rng.random() < 0.8 else "."
        hh = f"{h:02d}" if rng.random() < 0.08 else str(h)
        return f"{hh}{sep}{minute:02d}{sp}{marker}"
    hh = f"{hour:02d}" if (hour >= 10 or rng.random() < 0.6) else str(hour)
    return f"{hh}:{minute:02d}"


def gen_en(rng, date, time):
    wd = date.weekday()
    m, d, y = date.month, date.day, date.year
    month = _en_month(rng, m)
    weekday = _en_weekday(rng, wd) if rng.random() < 0.4 else None
    style = _pick(rng, [(4, "dmy"), (2, "d_of_m"), (5, "mdy"), (0.6, "dashed")])
    if style == "dashed":
        abbr = rng.choice(EN_MONTHS_ABBR[m - 1])
        body = f"{d:02d}-{abbr}-{y}" if rng.random() < 0.5 else f"{d}-{abbr}-{y}"
        weekday = None
    elif style == "dmy":
        day = _en_ordinal(d) if rng.random() < 0.35 else _day_num(rng, d)
        comma = "," if rng.random() < 0.15 else ""
        body = f"{day} {month}{comma} {y}"
    elif style == "d_of_m":
        the = "the " if rng.random() < 0.5 else ""
        comma = "," if rng.random() < 0.3 else ""
        body = f"{the}{_en_ordinal(d)} of {month}{comma} {y}"
    else:
        r = rng.random()
        if r < 0.3:
            day = _en_ordinal(d)
        elif r < 0.35:
            day = "the " + _en_ordinal(d)
        else:
            day = _day_num(rng, d)
        comma = "," if rng.random() < 0.75 else ""
        body = f"{month} {day}{comma} {y}"
    if weekday is not None:
        if style == "d_of_m" and body.startswith("the "):
            sep = rng.choice([" ", ", "])
        else:
            sep = ", " if rng.random() < 0.75 else " "
        body = f"{weekday}{sep}{body}"
    if time is None:
        if rng.random() < 0.08:
            body = "on " + body
        return body
    t = _en_time(rng, *time)
    if rng.random() < 0.12:
        return f"{t} on {body}" if rng.random() < 0.8 else f"{t}, {body}"
    join = _pick(rng, [(4, " at "), (3, ", "), (2, " "), (1, ", at ")])
    if t in ("noon", "midday"):
        join = rng.choice([" at ", ", at "])
    return f"{body}{join}{t}"


# --------------------------------------------------------------------------
# French
# --------------------------------------------------------------------------

def _fr_time(rng, hour, minute):
    if hour == 12 and minute == 0 and rng.random() < 0.15:
        return "midi"
    r = rng.random()
    if r < 0.15:
        # 12-hour with a day-period phrase.
        h = _to12(hour)
        if 1 <= hour <= 11:
            period = "du matin"
        elif 13 <= hour <= 17:
            period = "de l'après-midi"
        elif 18 <= hour <= 23:
            period = "du soir"
        else:
            period = None
        if period is not None:
            core = f"{h}h" if (minute == 0 and rng.random() < 0.6) else f"{h}h{minute:02d}"
            if rng.random() < 0.3:
                core = core.replace("h", " h ").rstrip()
            return f"{core} {period}"
    hh = f"{hour:02d}" if (hour < 10 and rng.random() < 0.4) else str(hour)
    style = _pick(rng, [(5, "h"), (2, "h_sp"), (2, "colon"), (0.7, "heures")])
    if style == "heures" and minute == 0:
        return f"{hh} heures"
    if style == "h_sp":
        if minute == 0 and rng.random() < 0.5:
            return f"{hh} h"
        return f"{hh} h {minute:02d}"
    if style == "colon":
        return f"{hh}:{minute:02d}"
    if minute == 0 and rng.random() < 0.6:
        return f"{hh}h"
    return f"{hh}h{minute:02d}"


def gen_fr(rng, date, time):
    wd = date.weekday()
    m, d, y = date.month, date.day, date.year
    if rng.random() < 0.65:
        month = rng.choice(FR_MONTHS[m - 1]) if rng.random() < 0.15 else FR_MONTHS[m - 1][0]
    else:
        month = rng.choice(FR_MONTHS_ABBR[m - 1])
    if d == 1:
        day = "1er" if rng.random() < 0.75 else _day_num(rng, 1)
    else:
        day = _day_num(rng, d)
    body = f"{day} {month} {y}"
    if rng.random() < 0.45:
        weekday = FR_WEEKDAYS[wd] if rng.random() < 0.75 else FR_WEEKDAYS_ABBR[wd][0]
        sep = ", " if rng.random() < 0.2 else " "
        body = f"{weekday}{sep}{body}"
    if rng.random() < 0.45:
        body = "le " + body
    if time is None:
        return body
    t = _fr_time(rng, *time)
    join = _pick(rng, [(5, " à "), (2, ", à "), (1.5, " "), (1.5, ", "), (0.5, " - ")])
    return f"{body}{join}{t}"


# --------------------------------------------------------------------------
# German
# --------------------------------------------------------------------------

def _de_time(rng, hour, minute):
    hh = f"{hour:02d}" if (hour < 10 and rng.random() < 0.5) else str(hour)
    style = _pick(rng, [(4, "colon_uhr"), (3, "colon"), (2, "dot_uhr"), (1, "uhr"), (0.5, "colon_h")])
    if style == "uhr" and minute == 0:
        return f"{hh} Uhr"
    if style == "colon_h":
        return f"{hh}:{minute:02d} h"
    if style == "dot_uhr":
        return f"{hh}.{minute:02d} Uhr"
    if style == "colon":
        return f"{hh}:{minute:02d}"
    return f"{hh}:{minute:02d} Uhr"


def gen_de(rng, date, time):
    wd = date.weekday()
    m, d, y = date.month, date.day, date.year
    if rng.random() < 0.65:
        month = rng.choice(DE_MONTHS[m - 1]) if rng.random() < 0.12 else DE_MONTHS[m - 1][0]
    else:
        month = rng.choice(DE_MONTHS_ABBR[m - 1])
    day = _day_num(rng, d) + ("." if rng.random() < 0.88 else "")
    body = f"{day} {month} {y}"
    has_wd = rng.random() < 0.45
    if has_wd:
        weekday = DE_WEEKDAYS[wd] if rng.random() < 0.75 else DE_WEEKDAYS_ABBR[wd][0]
        art = _pick(rng, [(4, ""), (3, "den "), (1, "dem "), (0.5, "der ")])
        sep = ", " if rng.random() < 0.85 else " "
        body = f"{weekday}{sep}{art}{body}"
    if rng.random() < 0.35:
        body = "am " + body
    if time is None:
        return body
    t = _de_time(rng, *time)
    join = _pick(rng, [(5, " um "), (2, ", um "), (2, ", "), (1.5, " "), (0.5, " - ")])
    return f"{body}{join}{t}"


# --------------------------------------------------------------------------
# Spanish
# --------------------------------------------------------------------------

def _es_time(rng, hour, minute):
    """Returns (time text, hour as displayed) so the caller can pick 'a la'/'a las'."""
    r = rng.random()
    if r < 0.2:
        h = _to12(hour)
        if 1 <= hour <= 11:
            period = "de la mañana"
        elif 13 <= hour <= 19:
            period = "de la tarde"
        elif 20 <= hour <= 23:
            period = "de la noche"
        else:
            period = None
        if period is not None:
            core = str(h) if (minute == 0 and rng.random() < 0.6) else f"{h}:{minute:02d}"
            return f"{core} {period}", h
    if r < 0.45:
        h = _to12(hour)
        marker = _pick(rng, [(3, ("a. m.", "p. m.")), (2, ("am", "pm")), (2, ("a.m.", "p.m.")),
                             (1, ("AM", "PM"))])
        marker = marker[1] if hour >= 12 else marker[0]
        sp = " " if rng.random() < 0.8 else ""
        return f"{h}:{minute:02d}{sp}{marker}", h
    hh = f"{hour:02d}" if (hour < 10 and rng.random() < 0.4) else str(hour)
    style = _pick(rng, [(5, "colon"), (2, "colon_h"), (1, "dot_h"), (0.7, "colon_hs")])
    if style == "colon_h":
        return f"{hh}:{minute:02d} h", hour
    if style == "dot_h":
        return f"{hh}.{minute:02d} h", hour
    if style == "colon_hs":
        return f"{hh}:{minute:02d} hs", hour
    return f"{hh}:{minute:02d}", hour


def gen_es(rng, date, time):
    wd = date.weekday()
    m, d, y = date.month, date.day, date.year
    if d == 1:
        day = _pick(rng, [(3, "1"), (2, "1º"), (1, "1.º"), (1.5, "1ro"), (1, "primero"), (0.3, "01")])
    else:
        day = _day_num(rng, d)
    if rng.random() < 0.75:
        month = rng.choice(ES_MONTHS[m - 1]) if rng.random() < 0.3 else ES_MONTHS[m - 1][0]
        de_year = "del" if (y >= 2000 and rng.random() < 0.25) else "de"
        body = f"{day} de {month} {de_year} {y}"
    else:
        month = rng.choice(ES_MONTHS_ABBR[m - 1])
        if rng.random() < 0.5:
            body = f"{day} {month} {y}"
        else:
            body = f"{day} de {month} de {y}"
    if rng.random() < 0.45:
        weekday = ES_WEEKDAYS[wd] if rng.random() < 0.75 else ES_WEEKDAYS_ABBR[wd][0]
        sep = ", " if rng.random() < 0.6 else " "
        body = f"{weekday}{sep}{body}"
    if rng.random() < 0.4:
        body = "el " + body
    if time is None:
        return body
    t, shown = _es_time(rng, *time)
    art = "a la " if shown == 1 else "a las "
    join = _pick(rng, [(5, " " + art), (2, ", " + art), (1.5, ", "), (1, " "), (0.5, " - ")])
    return f"{body}{join}{t}"


GENERATORS = {"en": gen_en, "fr": gen_fr, "de": gen_de, "es": gen_es}


# --------------------------------------------------------------------------
# Noise and the public entry points
# --------------------------------------------------------------------------

def _title(s: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in s.split(" "))


def add_noise(rng: random.Random, s: str) -> str:
    r = rng.random()
    if r < 0.08:
        s = s.upper()
    elif r < 0.16:
        s = s.lower()
    elif r < 0.24:
        s = _title(s)
    elif r < 0.34:
        s = s[:1].upper() + s[1:]
    if rng.random() < 0.05:
        s = s.replace(",", "")
    if rng.random() < 0.1:
        spaces = [i for i, c in enumerate(s) if c == " "]
        if spaces:
            i = rng.choice(spaces)
            s = s[:i] + " " + s[i:]
    if rng.random() < 0.05 and not s.endswith("."):
        s = s + "."
    if rng.random() < 0.03:
        s = " " + s
    if rng.random() < 0.03:
        s = s + " "
    return s


def target_for(date: _dt.date, time) -> str:
    out = date.isoformat()
    if time is not None:
        out += f"T{time[0]:02d}:{time[1]:02d}"
    return out


def gen_iso(rng, date, time):
    """Already-normalised input passes through (2026-11-28, 2026-11-28T14:05, 2026-11-28 14:05)."""
    if time is None:
        return date.isoformat()
    sep = "T" if rng.random() < 0.5 else " "
    return f"{date.isoformat()}{sep}{time[0]:02d}:{time[1]:02d}"


def make_written_v1(rng: random.Random, lang: str) -> tuple[str, str]:
    """The written distribution of the first model (kept as it was, so its held-out
    set stays in distribution).  About 3% are ISO 8601 already (identity)."""
    date = random_date(rng)
    time = random_time(rng) if rng.random() < 0.45 else None
    gen = gen_iso if rng.random() < 0.03 else GENERATORS[lang]
    src = gen(rng, date, time)
    src = add_noise(rng, src)
    return src, target_for(date, time)


def make_example(rng: random.Random, lang: str | None = None,
                 category: str | None = None) -> tuple[str, str, str, str]:
    """Returns (source, target, lang, category); see dates_forms for the categories."""
    import dates_forms  # here, not at the top: dates_forms builds on this module's tables
    if lang is None:
        lang = rng.choice(LANGS)
    if category is None:
        category = _pick(rng, dates_forms.CATEGORY_WEIGHTS)
    src, tgt = dates_forms.make(rng, lang, category)
    return src, tgt, lang, category


def examples(seed: int):
    """Endless stream of (source, target, lang, category) for a seed."""
    rng = random.Random(seed)
    while True:
        yield make_example(rng)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lang", choices=LANGS)
    import dates_forms
    ap.add_argument("--category", choices=[c for _, c in dates_forms.CATEGORY_WEIGHTS])
    args = ap.parse_args()
    rng = random.Random(args.seed)
    for _ in range(args.n):
        src, tgt, _, cat = make_example(rng, args.lang, args.category)
        print(f"{src}\t{tgt}\t{cat}")


if __name__ == "__main__":
    main()
