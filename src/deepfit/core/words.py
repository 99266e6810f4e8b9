"""Counts in messages with the right plural: "1 row", "3 rows", "1 column has", "2 columns have".

English only, by the regular rules (-s; -es after s, x, z, ch, sh; -ies after a consonant and y),
with the verbs messages use after a count. Below every other module."""

from __future__ import annotations

# the verbs of messages, plural → singular ("2 columns hold" / "1 column holds")
SINGULAR = {"have": "has", "are": "is", "were": "was", "do": "does", "hold": "holds",
            "carry": "carries", "share": "shares", "repeat": "repeats", "go": "goes",
            "lack": "lacks", "remain": "remains", "need": "needs", "look": "looks"}


# nouns the rules get wrong
IRREGULAR = {"epoch": "epochs", "stomach": "stomachs", "child": "children", "datum": "data"}


def plural_noun(noun: str) -> str:
    """The plural of a noun phrase's last word: row → rows, class → classes, query → queries."""
    head, _, last = noun.rpartition(" ")
    if last in IRREGULAR:
        last = IRREGULAR[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        last = last[:-1] + "ies"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def plural(n: int | float, noun: str, verb: str | None = None) -> str:
    """`n` (with thousands separators) and `noun` in the number it takes; with `verb` (given in
    its plural form: "have", "hold"), the verb agreeing too: plural(1, "row", "have") is
    "1 row has", plural(1200, "row") is "1,200 rows"."""
    one = n == 1
    if isinstance(n, bool) or not isinstance(n, (int, float)):
        count = str(n)  # not a number (a value read from a damaged file, say): as it is
    elif isinstance(n, float) and not n.is_integer():
        count = f"{n:g}"
    else:
        count = f"{int(n):,}"
    words = f"{count} {noun if one else plural_noun(noun)}"
    if verb is not None:
        words += " " + (SINGULAR.get(verb, verb + "s") if one else verb)
    return words


def noun_for(n: int, noun: str) -> str:
    """`noun` in the number `n` takes, without the count: noun_for(2, "column") is "columns"."""
    return noun if n == 1 else plural_noun(noun)


def verb_for(n: int, verb: str) -> str:
    """`verb` (its plural form) agreeing with a subject of `n`: verb_for(1, "have") is "has"."""
    return SINGULAR.get(verb, verb + "s") if n == 1 else verb
