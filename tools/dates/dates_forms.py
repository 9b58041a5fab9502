"""What people type beyond the written grammar of dates_data: numeric dates,
two-digit years, partial dates, times alone, and text with no (valid) date.

Categories (the held-out set reports accuracy per category):
  written    dates_data's written forms (the first model's distribution, kept as
             is) plus the same forms with a two-digit or apostrophe year
             (Thu 2 Feb 23, Nov. 5, '87)
  numeric    17.04.2011, 4/3/24, 11/23/2031 6:40 AM, le 19/05/2008 à 7h30,
             2015/06/30: separators . / - and space, day-first, month-first
             and year-first, 2- and 4-digit years, with or without a time
  partial    month and year -> YYYY-MM (April 2030, 04/2030), day and month
             -> --MM-DD (am 1. Mai, 4/3), with a time -> --MM-DDThh:mm
  time-only  09:45, 6:40 AM, à 7h30, um 19 Uhr, a las 7:30 de la tarde -> Thh:mm
  no-date    text without a date, relative expressions (in two weeks,
             demain), a month, weekday or year alone, impossible dates
             (30 février 2019, 2019-14-02, 31/04/2021) and times (25:30)
             -> empty target: the decoder answers </s> at once

Conventions:
  - two-digit years follow POSIX strptime %y: 00-68 -> 2000-2068, 69-99 -> 1969-1999
    (an apostrophe year '87 likewise);
  - a numeric day and month that are both <= 12 (03/04/2021) are read day-first,
    or month-first when the source starts with the MDY token;
  - a pair with one field > 12 is read the only way it can be (06/30/2015);
  - a year written first (2015/06/30) is always year-month-day;
  - a bare number after a month name is a day (April 30 -> --04-30), a 4-digit or
    apostrophe year is a year (April 2030, April '30 -> YYYY-MM).
"""

from __future__ import annotations

import datetime as _dt
import random
import re

import dates_data as dd

MDY = "<mdy>"  # a special token of tokenizer.json: "read ambiguous numeric dates month-first"
MDY_RATE = 0.2
CATEGORY_WEIGHTS = [(0.42, "written"), (0.24, "numeric"), (0.15, "partial"),
                    (0.07, "time-only"), (0.12, "no-date")]
CATEGORIES = [c for _, c in CATEGORY_WEIGHTS]
# Share of extra examples at the ends of months (28th-31st and just past the end, in
# written or numeric form), for a second training stage: 0 leaves the stream as it was.
MONTH_END_RATE = 0.0
# Share of those month-end examples that are 28-30 February of a year chosen to be a leap
# year half the time (a century year one time in five): the leap-year rule the digits carry.
LEAP_RATE = 0.0
# Share of extra no-date examples that are a counted relative phrase after a time
# ("13:07 on in 18 years"), whose number reads like a day of the month.
RELATIVE_TIME_RATE = 0.0


# --------------------------------------------------------------------------
# Reading rules (what the targets mean)
# --------------------------------------------------------------------------

def expand_yy(yy: int) -> int:
    """POSIX %y: 00-68 -> 20xx, 69-99 -> 19xx."""
    return 2000 + yy if yy <= 68 else 1900 + yy


def read_pair(first: int, second: int, mdy: bool):
    """(month, day) of a numeric day/month pair written in either order, or None."""
    if 1 <= first <= 12 and 1 <= second <= 12:
        return (first, second) if mdy else (second, first)
    if 1 <= first <= 12:
        return first, second
    if 1 <= second <= 12:
        return second, first
    return None


def valid(year: int, month: int, day: int) -> bool:
    try:
        _dt.date(year, month, day)
        return True
    except ValueError:
        return False


def iso(year, month, day, time) -> str:
    """The target: YYYY-MM-DD, --MM-DD (year None), with Thh:mm when time is given."""
    out = f"--{month:02d}-{day:02d}" if year is None else f"{year:04d}-{month:02d}-{day:02d}"
    if time is not None:
        out += f"T{time[0]:02d}:{time[1]:02d}"
    return out


# --------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------

class FakeDate:
    """A (possibly impossible) date for the written generators, which only read
    year/month/day/weekday()."""

    def __init__(self, year, month, day, weekday):
        self.year, self.month, self.day, self._wd = year, month, day, weekday

    def weekday(self):
        return self._wd

    def isoformat(self):
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"


def _date_in_year(rng, year) -> _dt.date:
    month, day = rng.randint(1, 12), rng.randint(1, 31)
    while not valid(year, month, day):
        day -= 1
    return _dt.date(year, month, day)


def _time_text(rng, lang, hour, minute) -> str:
    if lang == "en":
        return dd._en_time(rng, hour, minute)
    if lang == "fr":
        return dd._fr_time(rng, hour, minute)
    if lang == "de":
        return dd._de_time(rng, hour, minute)
    return dd._es_time(rng, hour, minute)[0]


def _with_time(rng, lang, body, hour, minute) -> str:
    """body followed by the language's way of adding a time (or, in English, preceded)."""
    t = _time_text(rng, lang, hour, minute)
    if lang == "en":
        if rng.random() < 0.1:
            return f"{t} on {body}"
        join = dd._pick(rng, [(3, " at "), (2, ", "), (3, " "), (1, ", at ")])
    elif lang == "fr":
        join = dd._pick(rng, [(4, " à "), (1, ", à "), (3, " "), (1, ", ")])
    elif lang == "de":
        join = dd._pick(rng, [(4, " um "), (1, ", um "), (1, ", "), (3, " ")])
    else:
        art = "a la " if re.match(r"0?1\D", t + " ") else "a las "
        join = dd._pick(rng, [(4, " " + art), (1, ", " + art), (1, ", "), (3, " ")])
    return f"{body}{join}{t}"


_ON = {"en": "on ", "fr": "le ", "de": "am ", "es": "el "}


def _maybe_on(rng, lang, body, p=0.3) -> str:
    return _ON[lang] + body if rng.random() < p else body


def _maybe_time(rng, p=0.35):
    return dd.random_time(rng) if rng.random() < p else None


def _num(v: int, pad: bool) -> str:
    return f"{v:02d}" if pad else str(v)


# --------------------------------------------------------------------------
# written
# --------------------------------------------------------------------------

def make_written(rng, lang):
    if rng.random() < 0.65:
        return dd.make_written_v1(rng, lang)
    # The same forms with a two-digit or apostrophe year (1969-2068).
    yy = rng.randint(0, 99)
    date = _date_in_year(rng, expand_yy(yy))
    time = dd.random_time(rng) if rng.random() < 0.35 else None
    src = dd.GENERATORS[lang](rng, date, time)
    short = f"'{yy:02d}" if rng.random() < 0.4 else f"{yy:02d}"
    src = re.sub(rf"(?<!\d){date.year}(?!\d)", short, src, count=1)
    return dd.add_noise(rng, src), iso(date.year, date.month, date.day, time)


# --------------------------------------------------------------------------
# numeric
# --------------------------------------------------------------------------

def numeric_date(rng, mdy: bool, fields=None):
    """(text, (year, month, day) or None).  fields=(a, b, year, order) forces
    the values (for impossible dates); order is dmy, mdy or ymd as written."""
    if fields is None:
        two_digit = rng.random() < 0.35
        if two_digit:
            yy = rng.randint(0, 99)
            date = _date_in_year(rng, expand_yy(yy))
            year_text_fn = lambda pad: f"{yy:02d}"  # noqa: E731
        else:
            date = dd.random_date(rng)
            year_text_fn = lambda pad: str(date.year)  # noqa: E731
        order = dd._pick(rng, [(6, "dmy"), (3, "mdy")] + ([] if two_digit else [(1, "ymd")]))
        day, month, year = date.day, date.month, date.year
        a, b = (day, month) if order == "dmy" else (month, day)
    else:
        a, b, year, order = fields
        year_text_fn = lambda pad: str(year)  # noqa: E731
        day = month = None
    pad = rng.random() < 0.55
    if order == "ymd":
        sep = dd._pick(rng, [(3, "/"), (2, "."), (1, "-")])
        text = f"{year_text_fn(pad)}{sep}{_num(a, pad)}{sep}{_num(b, pad)}"
        ok = valid(year, a, b)
        return text, ((year, a, b) if ok else None)
    if order == "dmy":
        sep = dd._pick(rng, [(3, "."), (3, "/"), (2, "-"), (0.6, " ")])
    else:
        sep = dd._pick(rng, [(4, "/"), (1.5, "-"), (0.5, ".")])
    text = f"{_num(a, pad)}{sep}{_num(b, pad)}{sep}{year_text_fn(pad)}"
    md = read_pair(a, b, mdy)
    if md is None or not valid(year, *md):
        return text, None
    return text, (year, md[0], md[1])


def make_numeric(rng, lang, mdy):
    text, ymd = numeric_date(rng, mdy)
    time = _maybe_time(rng, 0.4)
    body = _maybe_on(rng, lang, text, 0.25)
    if time is not None:
        body = _with_time(rng, lang, body, *time)
    return dd.add_noise(rng, body), iso(*ymd, time)


# --------------------------------------------------------------------------
# partial
# --------------------------------------------------------------------------

_MONTH_NAMES = {
    "en": lambda rng, m: dd._en_month(rng, m),
    "fr": lambda rng, m: rng.choice(dd.FR_MONTHS[m - 1] + dd.FR_MONTHS_ABBR[m - 1]),
    "de": lambda rng, m: rng.choice(dd.DE_MONTHS[m - 1] + dd.DE_MONTHS_ABBR[m - 1]),
    "es": lambda rng, m: rng.choice(dd.ES_MONTHS[m - 1] * 2 + dd.ES_MONTHS_ABBR[m - 1]),
}
_IN = {"en": "in ", "fr": "en ", "de": "im ", "es": "en "}


def month_year(rng, lang):
    year = dd.random_date(rng).year if rng.random() < 0.7 else rng.randint(1969, 2068)
    month = rng.randint(1, 12)
    if rng.random() < 0.25:  # numeric: 04/2030, 4.2030, 2030/04, 2030-04
        pad = rng.random() < 0.6
        form = dd._pick(rng, [(3, "my/"), (2, "my."), (1, "my-"), (1, "ym/"), (1, "iso")])
        if form == "iso":
            text = f"{year:04d}-{month:02d}"
        elif form == "ym/":
            text = f"{year}/{_num(month, pad)}"
        else:
            text = f"{_num(month, pad)}{form[2]}{year}"
    else:
        name = _MONTH_NAMES[lang](rng, month)
        ytext = f"'{year % 100:02d}" if (1969 <= year <= 2068 and rng.random() < 0.2) else str(year)
        if lang == "es" and not ytext.startswith("'"):
            sep = dd._pick(rng, [(3, " de "), (1, " del " if year >= 2000 else " de "), (2, " ")])
        else:
            sep = ", " if (lang == "en" and rng.random() < 0.1) else " "
        text = f"{name}{sep}{ytext}"
    if rng.random() < 0.2:
        text = _IN[lang] + text
    return dd.add_noise(rng, text), f"{year:04d}-{month:02d}"


def _strip_year(src: str, year: int) -> str:
    return re.sub(rf"(?:,? (?:del? )?|-){year}(?!\d)", "", src, count=1)


def day_month(rng, lang, mdy, valid_only=True):
    """A day and month without a year, written or numeric, maybe with a time."""
    month = rng.randint(1, 12)
    day = rng.randint(1, 31) if rng.random() < 0.85 else rng.choice([1, 1, 2, 3, 21, 22, 23, 31])
    while not valid(2000, month, day):  # 2000 is a leap year: --02-29 exists
        day -= 1
    time = _maybe_time(rng, 0.3)
    if rng.random() < 0.3:  # numeric: 4/3, 04/03, 1.5. (German), 30-06
        pad = rng.random() < 0.5
        order = "dmy" if rng.random() < 0.65 else "mdy"
        a, b = (day, month) if order == "dmy" else (month, day)
        if order == "dmy" and (lang == "de" or rng.random() < 0.15):
            text = f"{_num(a, pad)}.{_num(b, pad)}."
        elif rng.random() < 0.05:
            text = f"--{month:02d}-{day:02d}"
            a, b = month, day
        else:
            text = f"{_num(a, pad)}{dd._pick(rng, [(4, '/'), (1, '-')])}{_num(b, pad)}"
        md = read_pair(a, b, mdy) if not text.startswith("--") else (month, day)
        body = _maybe_on(rng, lang, text, 0.25)
        if time is not None:
            body = _with_time(rng, lang, body, *time)
        return dd.add_noise(rng, body), iso(None, md[0], md[1], time)
    # Written: a written form of a full date, its year taken out.
    year = rng.choice([2000, 2004, 2024]) if (month, day) == (2, 29) else rng.randint(1000, 2999)
    src = dd.GENERATORS[lang](rng, _dt.date(year, month, day), time)
    src = _strip_year(src, year)
    return dd.add_noise(rng, src), iso(None, month, day, time)


def make_partial(rng, lang, mdy):
    return month_year(rng, lang) if rng.random() < 0.4 else day_month(rng, lang, mdy)


# --------------------------------------------------------------------------
# time-only
# --------------------------------------------------------------------------

_AT = {"en": ["at "], "fr": ["à "], "de": ["um "], "es": ["a las "]}


def make_time_only(rng, lang):
    hour, minute = dd.random_time(rng)
    r = rng.random()
    if r < 0.03:
        text = f"T{hour:02d}:{minute:02d}"
    elif r < 0.3:
        text = f"{hour:02d}:{minute:02d}" if rng.random() < 0.6 else f"{hour}:{minute:02d}"
    else:
        text = _time_text(rng, lang, hour, minute)
        if rng.random() < 0.3:
            at = _AT[lang][0]
            if lang == "es" and re.match(r"0?1\D", text + " "):
                at = "a la "
            text = at + text
    return dd.add_noise(rng, text), f"T{hour:02d}:{minute:02d}"


# --------------------------------------------------------------------------
# no-date
# --------------------------------------------------------------------------

PHRASES = {
    "en": ["good morning", "hello world", "thank you very much", "see you soon", "how are you?",
           "no idea", "the meeting is cancelled", "please call me back", "nothing planned",
           "whenever you like", "as soon as possible", "I will be late", "what time is it?",
           "happy birthday", "soon", "later", "never", "sometime next year", "n/a", "TBD",
           "to be announced", "the quick brown fox", "May I help you?", "order #4821",
           "see attached", "lunch", "call Anna", "room 101", "page 12", "3 apples",
           "the day after", "once upon a time", "all day", "every Monday", "weekends",
           "good night", "ok", "yes", "no", "?"],
    "fr": ["bonjour", "bonsoir", "merci beaucoup", "à bientôt", "comment ça va ?", "aucune idée",
           "la réunion est annulée", "rappelez-moi", "rien de prévu", "quand vous voulez",
           "dès que possible", "je serai en retard", "quelle heure est-il ?", "joyeux anniversaire",
           "bientôt", "plus tard", "jamais", "à définir", "le chat dort", "tous les lundis",
           "bonne nuit", "d'accord", "oui", "non", "salle 12", "page 3", "toute la journée"],
    "de": ["guten Morgen", "hallo Welt", "vielen Dank", "bis bald", "wie geht's?", "keine Ahnung",
           "das Treffen fällt aus", "bitte zurückrufen", "nichts geplant", "wann du willst",
           "so bald wie möglich", "ich komme später", "wie spät ist es?", "alles Gute zum Geburtstag",
           "bald", "später", "nie", "noch offen", "der Hund schläft", "jeden Montag",
           "gute Nacht", "ja", "nein", "Zimmer 12", "Seite 3", "den ganzen Tag"],
    "es": ["buenos días", "hola mundo", "muchas gracias", "hasta pronto", "¿qué tal?", "ni idea",
           "la reunión se canceló", "llámame", "nada previsto", "cuando quieras",
           "lo antes posible", "llegaré tarde", "¿qué hora es?", "feliz cumpleaños",
           "pronto", "más tarde", "nunca", "por definir", "el gato duerme", "todos los lunes",
           "buenas noches", "vale", "sí", "no", "sala 12", "página 3", "todo el día"],
}

RELATIVE = {
    "en": ["today", "tomorrow", "yesterday", "tonight", "in two weeks", "in 3 days", "next week",
           "last week", "next Monday", "last Friday", "this weekend", "the day after tomorrow",
           "in a month", "two days ago", "next month", "next year", "in an hour", "now"],
    "fr": ["aujourd'hui", "demain", "hier", "ce soir", "dans deux semaines", "dans 3 jours",
           "la semaine prochaine", "la semaine dernière", "lundi prochain", "vendredi dernier",
           "ce week-end", "après-demain", "dans un mois", "il y a deux jours", "le mois prochain",
           "l'année prochaine", "dans une heure", "maintenant"],
    "de": ["heute", "morgen", "gestern", "heute Abend", "in zwei Wochen", "in 3 Tagen",
           "nächste Woche", "letzte Woche", "nächsten Montag", "letzten Freitag",
           "dieses Wochenende", "übermorgen", "in einem Monat", "vor zwei Tagen",
           "nächsten Monat", "nächstes Jahr", "in einer Stunde", "jetzt"],
    "es": ["hoy", "mañana", "ayer", "esta noche", "dentro de dos semanas", "en 3 días",
           "la semana que viene", "la semana pasada", "el próximo lunes", "el viernes pasado",
           "este fin de semana", "pasado mañana", "dentro de un mes", "hace dos días",
           "el mes que viene", "el año que viene", "dentro de una hora", "ahora"],
}
_NUM_WORDS = {"en": "two three four five ten", "fr": "deux trois quatre cinq dix",
              "de": "zwei drei vier fünf zehn", "es": "dos tres cuatro cinco diez"}
_UNITS = {"en": "days weeks months years hours", "fr": "jours semaines mois ans heures",
          "de": "Tagen Wochen Monaten Jahren Stunden", "es": "días semanas meses años horas"}
_REL_IN = {"en": "in {} {}", "fr": "dans {} {}", "de": "in {} {}", "es": "dentro de {} {}"}
_REL_AGO = {"en": "{} {} ago", "fr": "il y a {} {}", "de": "vor {} {}", "es": "hace {} {}"}
_WEEKDAYS = {"en": dd.EN_WEEKDAYS, "fr": dd.FR_WEEKDAYS, "de": dd.DE_WEEKDAYS, "es": dd.ES_WEEKDAYS}


def _relative(rng, lang):
    if rng.random() < 0.5:
        text = rng.choice(RELATIVE[lang])
    else:
        n = rng.choice(_NUM_WORDS[lang].split() + [str(rng.randint(1, 30))])
        text = rng.choice([_REL_IN, _REL_AGO])[lang].format(n, rng.choice(_UNITS[lang].split()))
    if rng.random() < 0.3:  # a time does not anchor a relative day
        text = _with_time(rng, lang, text, *dd.random_time(rng))
    return text


def _impossible(rng, lang, mdy):
    r = rng.random()
    if r < 0.4:  # written, day past the end of its month (30 février 2019, 31 April 2020)
        year = dd.random_date(rng).year
        month = rng.randint(1, 12)
        mlen = (_dt.date(year + month // 12, month % 12 + 1, 1) - _dt.timedelta(days=1)).day
        day = rng.randint(mlen + 1, 31) if mlen < 31 and rng.random() < 0.75 else rng.randint(32, 39)
        time = _maybe_time(rng, 0.3)
        src = dd.GENERATORS[lang](rng, FakeDate(year, month, day, rng.randint(0, 6)), time)
        if rng.random() < 0.2 and (month, day) != (2, 29):  # 29 February alone exists
            src = _strip_year(src, year)
        return src
    if r < 0.75:  # numeric, no reading valid (31/04/2021, 13/13/2020, 30.02.2019)
        year = dd.random_date(rng).year
        order = dd._pick(rng, [(5, "dmy"), (2, "mdy"), (2, "ymd")])
        while True:
            a = rng.choice([rng.randint(13, 39), rng.randint(0, 12), rng.randint(28, 31)])
            b = rng.choice([rng.randint(13, 39), rng.randint(0, 12), rng.randint(28, 31)])
            text, ymd = numeric_date(rng, mdy, (a, b, year, order))
            if ymd is None:
                break
        time = _maybe_time(rng, 0.25)
        return _with_time(rng, lang, text, *time) if time else text
    if r < 0.9:  # ISO with an impossible month or day (2019-14-02, 2019-02-30)
        year = dd.random_date(rng).year
        while True:
            month, day = rng.randint(0, 19), rng.randint(0, 39)
            if not valid(year, month, day):
                return f"{year:04d}-{month:02d}-{day:02d}"
    # an impossible time (25:30, 7:75)
    hour, minute = (rng.randint(24, 29), rng.randint(0, 59)) if rng.random() < 0.6 else \
        (rng.randint(0, 23), rng.randint(60, 99))
    return f"{hour:02d}:{minute:02d}" if rng.random() < 0.5 else f"{hour}:{minute:02d}"


def _noise_text(rng, lang):
    r = rng.random()
    if r < 0.35:
        return rng.choice(["12", "7", "42", "100", "999", "12345", "3.14", "12,50 €", "$3.99",
                           "45%", "555-0199", "+33 6 12 34 56 78", "v1.2.3", "x", "#12345",
                           str(rng.randint(0, 999)), str(rng.randint(10000, 99999999)),
                           f"{rng.randint(1, 99)}.{rng.randint(0, 99):02d} €"])
    if r < 0.7:
        words = [w for p in PHRASES[lang] for w in p.split() if not any(c.isdigit() for c in w)]
        return " ".join(rng.choice(words) for _ in range(rng.randint(1, 5)))
    letters = "abcdefghijklmnopqrstuvwxyz     "
    return "".join(rng.choice(letters) for _ in range(rng.randint(1, 20))).strip() or "a"


def relative_at_time(rng, lang):
    """A time with a counted relative phrase (no reference date): no date."""
    n = str(rng.randint(1, 30)) if rng.random() < 0.8 else rng.choice(_NUM_WORDS[lang].split())
    text = rng.choice([_REL_IN, _REL_AGO])[lang].format(n, rng.choice(_UNITS[lang].split()))
    return _with_time(rng, lang, text, *dd.random_time(rng))


def make_no_date(rng, lang, mdy):
    r = rng.random()
    if r < 0.22:
        text = rng.choice(PHRASES[lang])
    elif r < 0.44:
        text = _relative(rng, lang)
    elif r < 0.72:
        text = _impossible(rng, lang, mdy)
    elif r < 0.82:  # a month, weekday or year alone is not a date
        kind = rng.random()
        if kind < 0.4:
            text = _MONTH_NAMES[lang](rng, rng.randint(1, 12))
        elif kind < 0.75:
            text = rng.choice(_WEEKDAYS[lang])
        else:
            text = str(dd.random_date(rng).year)
            if rng.random() < 0.4:
                text = _IN[lang] + text
    else:
        text = _noise_text(rng, lang)
    return dd.add_noise(rng, text), ""


def month_end(rng, lang, mdy):
    """A date at the end of its month, or a day or two past it (-> no date): what
    tells 30 April from 31 April and 29 February 2024 from 29 February 2023."""
    year = dd.random_date(rng).year
    month = rng.randint(1, 12) if rng.random() < 0.5 else rng.choice([2, 4, 6, 9, 11])
    if LEAP_RATE and rng.random() < LEAP_RATE:
        month = 2
        if rng.random() < 0.2:
            year = 100 * rng.randint(10, 29)
        elif rng.random() < 0.5:
            year = 4 * rng.randint(250, 749)
    mlen = (_dt.date(year + month // 12, month % 12 + 1, 1) - _dt.timedelta(days=1)).day
    day = rng.randint(max(28, mlen - 1), min(31, mlen + 2))
    ok = day <= mlen
    time = _maybe_time(rng, 0.3)
    weekday = _dt.date(year, month, day).weekday() if ok else rng.randint(0, 6)
    if rng.random() < 0.6:
        src = dd.GENERATORS[lang](rng, FakeDate(year, month, day, weekday), time)
    else:
        order = "dmy" if rng.random() < 0.7 else "mdy"
        a, b = (day, month) if order == "dmy" else (month, day)
        src, _ = numeric_date(rng, mdy, (a, b, year, order))
        if time is not None:
            src = _with_time(rng, lang, src, *time)
    return dd.add_noise(rng, src), (iso(year, month, day, time) if ok else "")


# --------------------------------------------------------------------------

def make(rng: random.Random, lang: str, category: str) -> tuple[str, str]:
    """One (source, target) of a category; MDY_RATE of them start with the MDY token."""
    mdy = rng.random() < MDY_RATE
    if MONTH_END_RATE and rng.random() < MONTH_END_RATE:
        src, tgt = month_end(rng, lang, mdy)
    elif RELATIVE_TIME_RATE and rng.random() < RELATIVE_TIME_RATE:
        src, tgt = dd.add_noise(rng, relative_at_time(rng, lang)), ""
    elif category == "written":
        src, tgt = make_written(rng, lang)
    elif category == "numeric":
        src, tgt = make_numeric(rng, lang, mdy)
    elif category == "partial":
        src, tgt = make_partial(rng, lang, mdy)
    elif category == "time-only":
        src, tgt = make_time_only(rng, lang)
    elif category == "no-date":
        src, tgt = make_no_date(rng, lang, mdy)
    else:
        raise ValueError(f"unknown category {category!r}")
    return (MDY + src if mdy else src), tgt
