"""Generator of StreamFlow's synthetic demo datasets: support-ticket intents and job-note summaries.

Run from the repository root::

    uv run python scripts/make_demo_datasets.py            # rewrites datasets/
    uv run python scripts/make_demo_datasets.py --out DIR  # writes the same files under DIR

The phrase tables (names, sentence templates, job scenarios) are in `demo_vocabulary/*.toml`
beside this script; this file holds the traffic shares and the logic that assembles them.
The output is a pure function of the seed and those tables: every random choice comes from
`random.Random` streams seeded with strings, nothing iterates over a set, and files are written
with fixed encodings and line endings, so two runs give byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import sys
import tomllib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from random import Random
from string import Formatter
from typing import Any, TypeVar

DEFAULT_SEED = 20251125
GENERATOR_PATH = "scripts/make_demo_datasets.py"
LABEL_NOISE_RATE = 0.03
AMBIGUOUS_RATE = 0.2
VAGUE_RATE = 0.06
# Golden tickets may use phrasings the training split never shows (index % 4 == this slot).
HELD_OUT_SLOT = 3

GOLDEN_TICKETS = 1_200
TRAIN_TICKETS = 3_000
GOLDEN_NOTES = 400
TRAIN_NOTES = 800

TICKET_COLUMNS = ("id", "input", "expected", "slice", "tags")

# Shares of real traffic: scheduling and billing dominate, feature requests are rare.
INTENT_SHARES: dict[str, float] = {
    "billing_question": 0.21,
    "reschedule_appointment": 0.19,
    "invoice_dispute": 0.12,
    "technician_no_show": 0.11,
    "account_access": 0.11,
    "integration_issue": 0.10,
    "cancel_subscription": 0.09,
    "feature_request": 0.07,
}
LANGUAGE_SHARES: dict[str, float] = {"en": 0.80, "es": 0.09, "de": 0.07, "fr": 0.04}
CHANNEL_SHARES: dict[str, float] = {
    "email": 0.38,
    "chat": 0.30,
    "web_form": 0.20,
    "phone_transcript": 0.12,
}
PLAN_SHARES: dict[str, float] = {"starter": 0.35, "pro": 0.45, "enterprise": 0.20}
TRADE_SHARES: dict[str, float] = {
    "hvac": 0.32,
    "plumbing": 0.28,
    "electrical": 0.22,
    "appliance": 0.18,
}

# Which intents a ticket of a given intent is most easily mistaken for (ambiguity and noise).
CONFUSABLE: dict[str, tuple[str, ...]] = {
    "billing_question": ("invoice_dispute", "cancel_subscription", "account_access"),
    "invoice_dispute": ("billing_question", "technician_no_show"),
    "reschedule_appointment": ("technician_no_show", "cancel_subscription"),
    "technician_no_show": ("reschedule_appointment", "invoice_dispute"),
    "account_access": ("integration_issue", "billing_question"),
    "integration_issue": ("account_access", "feature_request"),
    "cancel_subscription": ("billing_question", "feature_request"),
    "feature_request": ("integration_issue", "cancel_subscription"),
}

# ---------------------------------------------------------------------------------------------
# Vocabulary: the phrase tables live in demo_vocabulary/*.toml beside this script
# ---------------------------------------------------------------------------------------------

T = TypeVar("T")
VOCABULARY_DIR = Path(__file__).resolve().parent / "demo_vocabulary"


def frozen(value: Any) -> Any:
    """A loaded TOML value with every array turned into a tuple."""
    if isinstance(value, list):
        return tuple(frozen(item) for item in value)
    if isinstance(value, dict):
        return {key: frozen(item) for key, item in value.items()}
    return value


def load_vocabulary(name: str) -> dict[str, Any]:
    """One file of `demo_vocabulary/`, arrays as tuples (order is kept: draws go by index)."""
    with (VOCABULARY_DIR / f"{name}.toml").open("rb") as file:
        loaded: dict[str, Any] = frozen(tomllib.load(file))
    return loaded


PEOPLE = load_vocabulary("people_and_places")
FIRST_NAMES: dict[str, tuple[str, ...]] = PEOPLE["first_names"]
LAST_NAMES: dict[str, tuple[str, ...]] = PEOPLE["last_names"]
TECH_NAMES: tuple[str, ...] = PEOPLE["tech_names"]
AGENT_NAMES: tuple[str, ...] = PEOPLE["agent_names"]
COMPANY_STEMS: tuple[str, ...] = PEOPLE["company_stems"]
COMPANY_TRADES: tuple[str, ...] = PEOPLE["company_trades"]
COMPANY_SUFFIXES: tuple[str, ...] = PEOPLE["company_suffixes"]
STREETS: tuple[str, ...] = PEOPLE["streets"]
EMAIL_DOMAINS: tuple[str, ...] = PEOPLE["email_domains"]
INTEGRATIONS: tuple[str, ...] = PEOPLE["integrations"]
SERVICES: tuple[str, ...] = PEOPLE["services"]
PARTS: tuple[str, ...] = PEOPLE["parts"]
TRADE_WORDS: tuple[str, ...] = PEOPLE["trade_words"]
ERROR_CODES: tuple[str, ...] = PEOPLE["error_codes"]
PLAN_NAMES: dict[str, str] = PEOPLE["plan_names"]
MONTHS: dict[str, tuple[str, ...]] = PEOPLE["months"]
WEEKDAYS: dict[str, tuple[str, ...]] = PEOPLE["weekdays"]

# ---------------------------------------------------------------------------------------------
# Ticket content
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntentText:
    """English sentence pools for one intent."""

    core: tuple[str, ...]
    detail: tuple[str, ...]
    ask: tuple[str, ...]
    secondary: tuple[str, ...]
    vague: tuple[str, ...]
    subjects: tuple[str, ...]
    category: str
    persona: str  # "customer" (a tenant's client), "tenant" (the business) or "either"


def for_every_intent(where: str, pools: dict[str, T]) -> dict[str, T]:
    """`pools` if it has an entry for exactly the intents of INTENT_SHARES."""
    if set(pools) != set(INTENT_SHARES):
        raise ValueError(
            f"demo_vocabulary/tickets.toml [{where}] has intents {sorted(pools)}; "
            f"give it exactly the intents of INTENT_SHARES: {sorted(INTENT_SHARES)}"
        )
    return pools


TICKETS = load_vocabulary("tickets")
EN = for_every_intent(
    "intents", {intent: IntentText(**text) for intent, text in TICKETS["intents"].items()}
)
# Short tickets in other languages: per intent a handful of real-looking sentences.
FOREIGN: dict[str, dict[str, tuple[str, ...]]] = {
    lang: for_every_intent(f"foreign.{lang}", pools) for lang, pools in TICKETS["foreign"].items()
}
UNCLEAR_TICKETS: tuple[str, ...] = TICKETS["english"]["unclear"]
EN_GREETINGS: tuple[str, ...] = TICKETS["english"]["greetings"]
EN_CONTEXT: tuple[str, ...] = TICKETS["english"]["context"]
EN_CLOSINGS: tuple[str, ...] = TICKETS["english"]["closings"]
FOREIGN_GREETINGS: dict[str, tuple[str, ...]] = TICKETS["foreign_greetings"]
FOREIGN_CLOSINGS: dict[str, tuple[str, ...]] = TICKETS["foreign_closings"]
FOREIGN_SUBJECTS: dict[str, tuple[str, ...]] = TICKETS["foreign_subjects"]
GENERIC_SUBJECTS: tuple[str, ...] = TICKETS["forms"]["generic_subjects"]
FORM_CATEGORIES: tuple[str, ...] = TICKETS["forms"]["categories"]
PHONE_OPENERS: tuple[str, ...] = TICKETS["phone"]["openers"]
# What the agent asks for, and which slot the caller answers with.
PHONE_PROMPTS: tuple[tuple[str, str], ...] = TICKETS["phone"]["prompts"]
PHONE_WRAPS: tuple[str, ...] = TICKETS["phone"]["wraps"]
FILLERS: tuple[str, ...] = TICKETS["phone"]["fillers"]
MISSPELLINGS: dict[str, str] = TICKETS["misspellings"]
KEY_NEIGHBOURS: dict[str, str] = TICKETS["key_neighbours"]

# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def allocate(total: int, shares: Mapping[str, float]) -> list[str]:
    """Exactly `total` labels split by `shares` (largest remainder), in `shares` order."""
    raw = {key: total * share / sum(shares.values()) for key, share in shares.items()}
    counts = {key: int(value) for key, value in raw.items()}
    by_remainder = sorted(shares, key=lambda key: (-(raw[key] - counts[key]), key))
    for key in by_remainder[: total - sum(counts.values())]:
        counts[key] += 1
    return [key for key in shares for _ in range(counts[key])]


def weighted(r: Random, shares: Mapping[str, float]) -> str:
    """One key drawn with probability proportional to its share."""
    keys = list(shares)
    return r.choices(keys, weights=[shares[key] for key in keys])[0]


def normalise(text: str) -> str:
    """A text reduced to lowercase words, for duplicate detection."""
    return " ".join(re.findall(r"\w+", text.lower()))


def typo(word: str, r: Random) -> str:
    """A word with one keyboard slip."""
    i = r.randrange(1, len(word) - 1)
    kind = r.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    neighbours = KEY_NEIGHBOURS.get(word[i].lower())
    return word[:i] + r.choice(neighbours) + word[i + 1 :] if neighbours else word


def add_typos(text: str, r: Random, count: int) -> str:
    """A text with `count` words slipped and common words misspelled now and then."""
    for correct, wrong in MISSPELLINGS.items():
        if correct in text and r.random() < 0.15:
            text = text.replace(correct, wrong, 1)
    # Only plain words: e-mail addresses, references and "Agent:" labels stay intact.
    words = list(re.finditer(r"(?<!\S)[A-Za-z]{5,}(?=[.,!?;]?(?:\s|$))", text))
    if not words or count <= 0:
        return text
    chosen = sorted(r.sample(range(len(words)), min(count, len(words))), reverse=True)
    for index in chosen:
        match = words[index]
        text = text[: match.start()] + typo(match.group(), r) + text[match.end() :]
    return text


def chat_style(text: str, r: Random) -> str:
    """A sentence as people type it into a chat box."""
    if r.random() < 0.6:
        text = text.lower()
    if r.random() < 0.5:
        text = text.replace("'", "")
    if r.random() < 0.7:
        text = text.rstrip(".")
    return text


def spoken(text: str, r: Random) -> str:
    """A sentence as a speech-to-text engine transcribes a caller."""
    words = text.lower().replace(",", "").replace('"', "").split()
    out: list[str] = []
    for word in words:
        if r.random() < 0.08:
            out.append(r.choice(FILLERS))
        out.append(word)
    return " ".join(out).rstrip("?.!")


# ---------------------------------------------------------------------------------------------
# Slots
# ---------------------------------------------------------------------------------------------


def money(r: Random, lang: str, low: float, high: float) -> str:
    """An amount of money written the way a customer in `lang` writes it."""
    value = (
        round(r.uniform(low, high), 2)
        if r.random() < 0.7
        else float(r.randint(int(low), int(high)))
    )
    if lang == "en":
        symbol = "$" if r.random() < 0.9 else "£"
        return f"{symbol}{value:,.2f}" if r.random() < 0.7 else f"{symbol}{value:.0f}"
    whole, cents = f"{value:.2f}".split(".")
    return f"{whole},{cents} €" if lang != "fr" or r.random() < 0.5 else f"{whole},{cents}€"


def a_date(r: Random, lang: str) -> tuple[str, str]:
    """A date in 2025 and its weekday, written for `lang`."""
    day = date(2025, 1, 1) + timedelta(days=r.randrange(365))
    weekday = WEEKDAYS[lang][day.weekday()]
    month = MONTHS[lang][day.month - 1]
    if lang == "en":
        style = r.randrange(5)
        text = (
            f"{month} {day.day}",
            f"{day.month}/{day.day}",
            f"{weekday} {day.month}/{day.day}",
            f"{month[:3]} {day.day}",
            f"{day.day} {month}",
        )[style]
    elif lang == "de":
        text = f"{day.day}. {month}" if r.random() < 0.5 else f"{day.day:02d}.{day.month:02d}."
    else:
        text = f"{day.day} {'de ' if lang == 'es' else ''}{month}"
    return text, weekday


def a_time(r: Random, lang: str) -> str:
    """A clock time as people write it in `lang`."""
    hour = r.randint(7, 17)
    minute = r.choice((0, 0, 0, 30, 15, 45))
    if lang != "en":
        return f"{hour}:{minute:02d}" if minute or r.random() < 0.5 else f"{hour}"
    suffix = "am" if hour < 12 else "pm"
    hour12 = hour if hour <= 12 else hour - 12
    if minute == 0 and r.random() < 0.6:
        return f"{hour12}{r.choice(('', ' '))}{suffix}"
    return f"{hour12}:{minute:02d}" + (f" {suffix}" if r.random() < 0.5 else "")


def invoice_number(r: Random) -> str:
    """An invoice reference in one of the formats tenants use."""
    style = r.randrange(4)
    if style == 0:
        return f"INV-2025-{r.randint(100, 99999):05d}"
    if style == 1:
        return f"#{r.randint(10000, 999999)}"
    if style == 2:
        return f"INV{r.randint(100000, 999999)}"
    return f"{r.randint(1000, 9999)}-{r.randint(10, 99)}"


def job_number(r: Random) -> str:
    """A job or work-order reference."""
    return r.choice(("JOB-{}", "WO-{}", "#{}", "J{}")).format(r.randint(10000, 99999))


def company_name(r: Random) -> str:
    """A tenant's business name."""
    return f"{r.choice(COMPANY_STEMS)} {r.choice(COMPANY_TRADES)}{r.choice(COMPANY_SUFFIXES)}"


def ticket_slots(r: Random, lang: str, plan: str) -> dict[str, str]:
    """Every value a ticket template may mention, drawn once per ticket."""
    first = r.choice(FIRST_NAMES[lang])
    last = r.choice(LAST_NAMES[lang])
    the_date, weekday = a_date(r, lang)
    the_date2, weekday2 = a_date(r, lang)
    time1 = a_time(r, lang)
    n = r.randint(2, 25)
    ascii_last = re.sub(r"[^a-z]", "", last.lower()) or "mail"
    ascii_first = re.sub(r"[^a-z]", "", first.lower()) or "info"
    email = r.choice(
        (
            f"{ascii_first}.{ascii_last}",
            f"{ascii_first[0]}{ascii_last}",
            f"office{r.randint(1, 99)}",
        )
    )
    return {
        "first": first,
        "last": last,
        "name": f"{r.choice(FIRST_NAMES['en'])} {r.choice(LAST_NAMES['en'])}",
        "email": f"{email}@{r.choice(EMAIL_DOMAINS)}",
        "company": company_name(r),
        "inv": invoice_number(r),
        "job": job_number(r),
        "date": the_date,
        "date2": the_date2,
        "day": weekday,
        "day2": weekday2,
        "time": time1,
        "time2": a_time(r, lang),
        "amount": money(r, lang, 89, 2400),
        "amount2": money(r, lang, 60, 900),
        "hours": str(r.randint(2, 5)),
        "n": str(n),
        "m": str(max(1, n - r.randint(1, 6))),
        "years": str(r.randint(2, 9)),
        "tech": r.choice(TECH_NAMES),
        "agent": r.choice(AGENT_NAMES),
        "integration": r.choice(INTEGRATIONS),
        "service": r.choice(SERVICES),
        "part": r.choice(PARTS),
        "plan": PLAN_NAMES[plan],
        "street": f"{r.randint(12, 9899)} {r.choice(STREETS)}",
        "error_code": r.choice(ERROR_CODES),
        "trade": r.choice(TRADE_WORDS),
        "phone": f"({r.randint(201, 989)}) {r.randint(200, 999)}-{r.randint(1000, 9999)}",
    }


# ---------------------------------------------------------------------------------------------
# Tickets
# ---------------------------------------------------------------------------------------------


@dataclass
class TicketPlan:
    """The hidden facts behind one ticket before it is written out."""

    intent: str
    lang: str
    channel: str
    plan: str
    ambiguous: bool
    vague: bool
    golden: bool


def phrasings(pool: tuple[str, ...], golden: bool) -> tuple[str, ...]:
    """The templates a ticket may use: every fourth one only ever appears in golden tickets."""
    return pool if golden else tuple(t for i, t in enumerate(pool) if i % 4 != HELD_OUT_SLOT)


def en_body(r: Random, plan: TicketPlan, slots: Mapping[str, str]) -> list[str]:
    """The sentences of an English ticket body, before channel formatting."""
    text = EN[plan.intent]
    if plan.vague:
        # A third of vague tickets carry no intent cue at all, as real "call me back" tickets do.
        pool = UNCLEAR_TICKETS if r.random() < 0.35 else text.vague
        sentences = [r.choice(pool)]
        if r.random() < 0.5:
            sentences.append(r.choice(("Ref {job}.", "Invoice {inv}.", "Account {email}.")))
        return [s.format_map(slots) for s in sentences]
    if plan.ambiguous:
        # The main request plus a full request of a confusable intent; the label is the one an
        # annotator reads as primary, which a bag-of-words model often cannot tell.
        other = EN[r.choice(CONFUSABLE[plan.intent])]
        sentences = [
            r.choice(phrasings(text.core, plan.golden)),
            r.choice(phrasings(other.core, plan.golden) if r.random() < 0.6 else other.secondary),
        ]
        if r.random() < 0.3:
            sentences.reverse()
        if r.random() < 0.5:
            sentences.append(r.choice(text.ask))
        return [s.format_map(slots) for s in sentences]
    sentences = r.sample(phrasings(text.core, plan.golden), 2 if r.random() < 0.3 else 1)
    if r.random() < 0.55:
        sentences.append(r.choice(text.detail))
    if r.random() < 0.65:
        sentences.append(r.choice(text.ask))
    if r.random() < 0.25:
        sentences.insert(0, r.choice(EN_CONTEXT))
    return [s.format_map(slots) for s in sentences]


def foreign_body(r: Random, plan: TicketPlan, slots: Mapping[str, str]) -> list[str]:
    """The sentences of a Spanish, German or French ticket body."""
    pool = phrasings(FOREIGN[plan.lang][plan.intent], plan.golden)
    sentences = r.sample(pool, 2 if r.random() < 0.35 else 1)
    if plan.ambiguous:
        other = r.choice(CONFUSABLE[plan.intent])
        sentences.insert(
            r.randrange(0, len(sentences) + 1),
            r.choice(phrasings(FOREIGN[plan.lang][other], plan.golden)),
        )
    if r.random() < 0.3:
        sentences.append(r.choice(("{inv}", "{job}", "{email}")))
    return [s.format_map(slots) for s in sentences]


def signature(r: Random, persona: str, lang: str, slots: Mapping[str, str]) -> str:
    """An email sign-off block."""
    full = f"{slots['first']} {slots['last']}"
    if lang != "en":
        options: tuple[str, ...] = (full, full, f"{full}\n{slots['company']}", slots["first"])
    elif persona == "tenant":
        options = (
            full,
            f"{full}\n{slots['company']}",
            f"{full}\nOffice Manager, {slots['company']}\n{slots['phone']}",
            f"{slots['first']}\n{slots['company']}",
        )
    else:
        options = (
            full,
            slots["first"],
            f"{full}\n{slots['phone']}",
            f"{full}\nSent from my iPhone",
        )
    return r.choice(options)


def render_email(r: Random, plan: TicketPlan, body: list[str], slots: Mapping[str, str]) -> str:
    """A ticket as an inbound email: subject, greeting, paragraph and signature."""
    persona = EN[plan.intent].persona
    if persona == "either":
        persona = r.choice(("tenant", "customer"))
    if plan.lang == "en":
        subject_pool = EN[plan.intent].subjects + GENERIC_SUBJECTS
        greeting = r.choice(EN_GREETINGS)
        closing = r.choice(EN_CLOSINGS)
    else:
        subject_pool = FOREIGN_SUBJECTS[plan.lang]
        greeting = r.choice(FOREIGN_GREETINGS[plan.lang])
        closing = r.choice(FOREIGN_CLOSINGS[plan.lang])
    parts: list[str] = []
    if r.random() < 0.7:
        parts.append(f"Subject: {r.choice(subject_pool)}".format_map(slots))
    if r.random() < 0.85:
        parts.append(greeting.format_map(slots))
    paragraph = " ".join(body)
    if plan.lang == "en" and r.random() < 0.25:
        paragraph = add_typos(paragraph, r, r.choice((1, 1, 2)))
    parts.append(paragraph)
    sign = signature(r, persona, plan.lang, slots)
    parts.append(f"{closing}\n{sign}" if r.random() < 0.8 else sign)
    return "\n\n".join(parts)


def render_chat(r: Random, plan: TicketPlan, body: list[str]) -> str:
    """A ticket as the messages of a chat widget, one per line."""
    lines = [chat_style(sentence, r) for sentence in body]
    if r.random() < 0.45:
        lines.insert(
            0, r.choice(("hi", "hello", "hey", "hi there", "hola" if plan.lang == "es" else "hi"))
        )
    if plan.lang == "en" and r.random() < 0.3:
        lines.append(r.choice(("thx", "pls help", "??", "asap please", "thanks")))
    text = "\n".join(lines)
    if plan.lang == "en":
        text = add_typos(text, r, r.choice((0, 1, 1, 2, 2, 3)))
    return text


def render_phone(r: Random, body: list[str], slots: Mapping[str, str]) -> str:
    """A ticket as a speech-to-text transcript of a support call."""
    turns = [f"Agent: {r.choice(PHONE_OPENERS).format_map(slots)}"]
    turns.append(f"Caller: {r.choice(('hi', 'yeah hi', 'hello', 'hi um'))} {spoken(body[0], r)}")
    prompt, answer = r.choice(PHONE_PROMPTS)
    turns.append(f"Agent: {prompt}")
    reference = f"{slots['first']} {slots['last']}" if answer == "full_name" else slots[answer]
    turns.append(f"Caller: {r.choice(('yeah it is', 'its', 'uh', 'sure'))} {reference.lower()}")
    for sentence in body[1:]:
        turns.append(f"Caller: {spoken(sentence, r)}")
    turns.append(f"Agent: {r.choice(PHONE_WRAPS)}")
    return "\n".join(turns)


def render_web_form(r: Random, plan: TicketPlan, body: list[str], slots: Mapping[str, str]) -> str:
    """A ticket as the fields of the contact form, category chosen by the submitter."""
    roll = r.random()
    if roll < 0.4:
        category = EN[plan.intent].category
    elif roll < 0.85:
        category = r.choice(("Other", "General question"))
    else:
        category = r.choice(FORM_CATEGORIES)
    subject_pool = EN[plan.intent].subjects if plan.lang == "en" else FOREIGN_SUBJECTS[plan.lang]
    fields = [
        f"Name: {slots['first']} {slots['last']}",
        f"Subject: {r.choice(subject_pool + GENERIC_SUBJECTS[:3])}".format_map(slots),
        f"Category: {category}",
    ]
    if r.random() < 0.3:
        fields.append(f"Reference: {r.choice((slots['job'], slots['inv']))}")
    message = " ".join(body)
    if plan.lang == "en" and r.random() < 0.3:
        message = add_typos(message, r, 1)
    fields.append(f"Message: {message}")
    return "\n".join(fields)


def write_ticket(r: Random, plan: TicketPlan) -> str:
    """The text of one ticket."""
    slots = ticket_slots(r, plan.lang, plan.plan)
    body = en_body(r, plan, slots) if plan.lang == "en" else foreign_body(r, plan, slots)
    if plan.channel == "email":
        return render_email(r, plan, body, slots)
    if plan.channel == "chat":
        return render_chat(r, plan, body)
    if plan.channel == "phone_transcript":
        return render_phone(r, body, slots)
    return render_web_form(r, plan, body, slots)


def noisy_label(r: Random, intent: str) -> str:
    """A wrong label of the kind a hurried annotator gives."""
    if r.random() < 0.7:
        return r.choice(CONFUSABLE[intent])
    return r.choice([other for other in INTENT_SHARES if other != intent])


def make_tickets(
    r: Random, total: int, id_prefix: str, taken: set[str], *, golden: bool
) -> list[dict[str, str]]:
    """`total` labelled tickets whose texts are not in `taken` (which grows with them)."""
    intents = allocate(total, INTENT_SHARES)
    r.shuffle(intents)
    noisy = set(r.sample(range(total), round(total * LABEL_NOISE_RATE)))
    rows: list[dict[str, str]] = []
    for index, intent in enumerate(intents):
        lang = weighted(r, LANGUAGE_SHARES)
        channels = (
            CHANNEL_SHARES
            if lang == "en"
            else {key: share for key, share in CHANNEL_SHARES.items() if key != "phone_transcript"}
        )
        plan = TicketPlan(
            intent=intent,
            lang=lang,
            channel=weighted(r, channels),
            plan=weighted(r, PLAN_SHARES),
            ambiguous=r.random() < AMBIGUOUS_RATE,
            vague=lang == "en" and r.random() < VAGUE_RATE,
            golden=golden,
        )
        text = write_ticket(r, plan)
        while normalise(text) in taken:
            text = write_ticket(r, plan)
        taken.add(normalise(text))
        label = noisy_label(r, intent) if index in noisy else intent
        tags = [f"lang:{plan.lang}", f"plan:{plan.plan}"]
        if plan.ambiguous:
            tags.append("flag:ambiguous")
        rows.append(
            {
                "id": f"{id_prefix}-{index + 1:06d}",
                "input": text,
                "expected": label,
                "slice": plan.channel,
                "tags": ",".join(tags),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Job notes
# ---------------------------------------------------------------------------------------------

Slot = Callable[[Random, dict[str, str]], str]


def pick(*options: str) -> Slot:
    """A slot that takes one of `options`."""
    return lambda r, _: r.choice(options)


def number(low: float, high: float, decimals: int = 0) -> Slot:
    """A slot that takes a uniform number between `low` and `high`."""
    return lambda r, _: f"{r.uniform(low, high):.{decimals}f}"


def part_number(style: str) -> Slot:
    """A slot that takes a manufacturer-looking part number."""

    def draw(r: Random, _: dict[str, str]) -> str:
        digits = r.randint(10000, 99999)
        if style == "appliance":
            return r.choice((f"W10{digits}{r.randint(0, 9)}", f"DC97-{digits}A", f"5304{digits}"))
        if style == "hvac":
            return r.choice((f"P291-{digits % 10000:04d}", f"HC{digits}", f"BM-{digits}"))
        if style == "plumbing":
            return r.choice((f"{digits}", f"RP{digits}", f"LF{digits % 1000}-{r.randint(10, 99)}"))
        return r.choice((f"QO{digits % 1000}", f"HOM{digits % 1000}CP", f"EL-{digits}"))

    return draw


@dataclass(frozen=True)
class Scenario:
    """One kind of job: what the technician finds, does and reports, and how dispatch sums it up."""

    trade: str
    key: str
    symptom: tuple[str, ...]
    diagnosis: tuple[str, ...]
    action: tuple[str, ...]
    test: tuple[str, ...]
    summary: tuple[str, ...]
    slots: dict[str, Slot] = field(default_factory=dict)
    extra: tuple[str, ...] = ()
    # Follow-ups this job always needs, as (note sentence, dispatcher sentence); empty = generic.
    followups: tuple[tuple[str, str], ...] = ()


def scaled(source: str, low: float, high: float) -> Slot:
    """A slot that takes a fraction of a number drawn earlier."""
    return lambda r, s: f"{float(s[source]) * r.uniform(low, high):.1f}"


def slot_from_spec(spec: Mapping[str, Any], equipment: Mapping[str, tuple[str, ...]]) -> Slot:
    """The slot one `[scenarios.slots]` entry of job_notes.toml describes."""
    match spec:
        case {"pick": options}:
            return pick(*options)
        case {"equipment": pool}:
            if pool not in equipment:
                raise ValueError(f"no [equipment] pool {pool!r}; the pools are {sorted(equipment)}")
            return pick(*equipment[pool])
        case {"uniform": (low, high), **rest}:
            return number(low, high, rest.get("decimals", 0))
        case {"scaled": source, "by": (low, high)}:
            return scaled(source, low, high)
        case {"part_number": style}:
            return part_number(style)
    raise ValueError(
        f"slot {dict(spec)} is not one of pick, equipment, uniform, scaled or part_number"
    )


def load_scenario(entry: Mapping[str, Any], equipment: Mapping[str, tuple[str, ...]]) -> Scenario:
    """One `[[scenarios]]` entry of job_notes.toml with its slots made drawable."""
    slots: dict[str, Slot] = {}
    for name, spec in entry.get("slots", {}).items():
        try:
            slots[name] = slot_from_spec(spec, equipment)
        except ValueError as error:
            raise ValueError(
                f"demo_vocabulary/job_notes.toml scenario {entry['key']!r}, slot {name!r}: {error}"
            ) from error
    return Scenario(**{**entry, "slots": slots})


NOTES = load_vocabulary("job_notes")
SCENARIOS = tuple(load_scenario(entry, NOTES["equipment"]) for entry in NOTES["scenarios"])
GENERIC_FOLLOWUPS: dict[str, tuple[tuple[str, str], ...]] = NOTES["generic_followups"]
NO_FOLLOWUP: tuple[str, ...] = NOTES["sentences"]["no_followup"]
ARRIVALS: tuple[str, ...] = NOTES["sentences"]["arrivals"]
COMPLAINTS: tuple[str, ...] = NOTES["sentences"]["complaints"]
INTERACTIONS: tuple[tuple[str, str], ...] = NOTES["sentences"]["interactions"]
FILLER_NOTES: tuple[str, ...] = NOTES["sentences"]["filler_notes"]
DEPARTURES: tuple[str, ...] = NOTES["sentences"]["departures"]
CUSTOMER_NAMES = tuple(
    f"{first} {last}" for first, last in zip(FIRST_NAMES["en"], LAST_NAMES["en"], strict=False)
)


def clock(minutes: int) -> str:
    """A time of day as techs write it (08:40)."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def note_slots(r: Random, scenario: Scenario) -> dict[str, str]:
    """Every value a note or its summary may mention, drawn once per note."""
    arrive = r.randrange(7 * 60, 16 * 60, 5)
    stay = r.randrange(35, 190, 5)
    window = r.choice(("8-10", "8-12", "10-12", "12-4", "1-3", "2-5"))
    slots = {
        "cust": r.choice(CUSTOMER_NAMES) if r.random() < 0.5 else r.choice(FIRST_NAMES["en"]),
        "street": f"{r.randint(12, 9899)} {r.choice(STREETS)}",
        "t_arr": clock(arrive),
        "t_mid": clock(arrive + stay // 2),
        "t_out": clock(arrive + stay),
        "mins": str(stay),
        "late": str(r.randrange(10, 45, 5)),
        "window": window,
        "since": r.choice(("yesterday", "the weekend", "Monday", "last night", "this morning")),
        "amount": f"{r.randrange(95, 1400, 5)}",
        "small": f"{r.randrange(180, 650, 10)}",
        "day": r.choice(WEEKDAYS["en"][:5]),
        "eta": str(r.randint(2, 6)),
        "age": str(r.randint(12, 22)),
        "tons": r.choice(("2", "2.5", "3", "3.5", "4")),
    }
    for name, slot in scenario.slots.items():
        slots[name] = slot(r, slots)
    slots["symptom"] = r.choice(scenario.symptom)
    return slots


def fields(template: str) -> set[str]:
    """The slot names a template mentions."""
    return {name for _, name, _, _ in Formatter().parse(template) if name}


def core_sentences(r: Random, scenario: Scenario) -> tuple[str, tuple[str, str, str]]:
    """A summary headline and the diagnosis, action and (possibly empty) test it rests on.

    Every value the headline quotes is mentioned by one of the three note sentences, so a
    reference summary never states a fact its note does not contain.
    """
    headlines = list(scenario.summary)
    r.shuffle(headlines)
    for headline in headlines:
        combos = [
            (diagnosis, action, test)
            for diagnosis in scenario.diagnosis
            for action in scenario.action
            for test in ("", *scenario.test)
            if fields(headline) <= fields(diagnosis) | fields(action) | fields(test)
        ]
        if combos:
            # Notes leave out the test reading 15% of the time.
            weights = [0.15 if not test else 0.85 / len(scenario.test) for _, _, test in combos]
            return headline, r.choices(combos, weights=weights)[0]
    raise ValueError(f"scenario {scenario.key}: no summary is supported by its note sentences")


def write_note(r: Random, scenario: Scenario) -> tuple[str, list[str]]:
    """One job note and the sentences of its dispatcher summary."""
    s = note_slots(r, scenario)
    opening: list[str] = []
    if r.random() < 0.8:
        opening.append(r.choice(ARRIVALS))
    if r.random() < 0.85:
        opening.append(r.choice(COMPLAINTS))
        if len(opening) == 2 and r.random() < 0.3:
            opening.reverse()
    headline, (diagnosis, action, test) = core_sentences(r, scenario)
    middle = [diagnosis]
    if scenario.extra and r.random() < 0.35:
        middle.append(r.choice(scenario.extra))
    middle.append(action)
    if test:
        middle.append(test)
    closing: list[str] = []
    interaction, paid = ("", "")
    if r.random() < 0.6:
        interaction, paid = r.choice(INTERACTIONS)
        closing.append(interaction)
    followup_summary = ""
    if scenario.followups or r.random() < 0.45:
        note_text, followup_summary = r.choice(
            scenario.followups or GENERIC_FOLLOWUPS[scenario.trade]
        )
        closing.append(note_text)
    elif r.random() < 0.6:
        closing.append(r.choice(NO_FOLLOWUP))
    if closing and r.random() < 0.3:
        closing.reverse()
    if r.random() < 0.3:
        closing.append(r.choice(DEPARTURES))
    fillers = r.sample(FILLER_NOTES, r.choice((0, 0, 1, 1, 2)))
    sentences = opening + middle + closing
    for filler in fillers:
        sentences.insert(r.randrange(1, len(sentences) + 1), filler)
    spare = [filler for filler in FILLER_NOTES if filler not in fillers]
    while len(sentences) < 4:
        sentences.insert(r.randrange(1, len(sentences) + 1), spare.pop(r.randrange(len(spare))))
    while len(sentences) > 9:
        sentences.remove(next(x for x in sentences if x in FILLER_NOTES or x in DEPARTURES))
    note = " ".join(sentence.format_map(s) for sentence in sentences)
    summary = [headline]
    if followup_summary:
        summary.append(followup_summary)
    elif paid and r.random() < 0.6:
        summary.append(paid)
    return note, [sentence.format_map(s) for sentence in summary]


def make_notes(r: Random, total: int, id_prefix: str, taken: set[str]) -> list[dict[str, str]]:
    """`total` job notes with reference summaries whose notes are not in `taken`."""
    trades = allocate(total, TRADE_SHARES)
    r.shuffle(trades)
    by_trade = {trade: [s for s in SCENARIOS if s.trade == trade] for trade in TRADE_SHARES}
    rows: list[dict[str, str]] = []
    for index, trade in enumerate(trades):
        scenario = r.choice(by_trade[trade])
        note, summary = write_note(r, scenario)
        while normalise(note) in taken:
            note, summary = write_note(r, scenario)
        taken.add(normalise(note))
        plan = weighted(r, PLAN_SHARES)
        rows.append(
            {
                "id": f"{id_prefix}-{index + 1:05d}",
                "input": note,
                "expected": " ".join(summary),
                "slice": trade,
                "tags": f"lang:en,plan:{plan},job:{scenario.key},summary_sentences:{len(summary)}",
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Files and manifest
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """What the manifest says about one generated file."""

    name: str
    task: str
    agent_type: str
    role: str
    path: str
    file_format: str
    rows: list[dict[str, str]]
    how: str


def csv_bytes(rows: Sequence[Mapping[str, str]]) -> bytes:
    """Rows as RFC 4180 CSV with a header, LF line endings, UTF-8."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TICKET_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def jsonl_bytes(rows: Sequence[Mapping[str, str]]) -> bytes:
    """Rows as JSON Lines in column order, UTF-8."""
    lines = [
        json.dumps({key: row[key] for key in TICKET_COLUMNS}, ensure_ascii=False) for row in rows
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def yaml_scalar(value: Any) -> str:
    """A value as a YAML scalar (strings double-quoted with JSON escapes, which YAML accepts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def counts_yaml(counts: Counter[str], indent: str) -> list[str]:
    """A count mapping as YAML lines, largest first."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [f"{indent}{key}: {count}" for key, count in ordered]


def manifest_text(specs: Sequence[DatasetSpec], digests: Mapping[str, str], seed: int) -> str:
    """The manifest describing every generated file."""
    lines = [
        "# Generated by scripts/make_demo_datasets.py; do not edit by hand, re-run the script.",
        "version: 1",
        "generator:",
        f"  script: {GENERATOR_PATH}",
        f"  seed: {seed}",
        '  command: "uv run python scripts/make_demo_datasets.py"',
        '  licence: "synthetic data, CC0-1.0 (public domain dedication)"',
        f"  label_noise_rate: {LABEL_NOISE_RATE}",
        "datasets:",
    ]
    for spec in specs:
        tag_counts: Counter[str] = Counter()
        for row in spec.rows:
            tag_counts.update(tag for tag in row["tags"].split(",") if tag.startswith("lang:"))
        lines += [
            f"  - name: {spec.name}",
            f"    task: {spec.task}",
            f"    agent_type: {spec.agent_type}",
            f"    role: {spec.role}",
            f"    path: {spec.path}",
            f"    format: {spec.file_format}",
            f"    rows: {len(spec.rows)}",
            f"    columns: [{', '.join(TICKET_COLUMNS)}]",
        ]
        if spec.task == "classification":
            lines.append("    classes:")
            lines += counts_yaml(Counter(row["expected"] for row in spec.rows), "      ")
        lines.append("    slices:")
        lines += counts_yaml(Counter(row["slice"] for row in spec.rows), "      ")
        lines.append("    languages:")
        lines += counts_yaml(
            Counter(t.removeprefix("lang:") for t in tag_counts.elements()), "      "
        )
        lines.append(f"    sha256: {digests[spec.path]}")
        lines.append("    how_it_was_made: >-")
        how = spec.how.format(
            script=GENERATOR_PATH,
            seed=seed,
            ambiguous=round(AMBIGUOUS_RATE * 100),
            vague=round(VAGUE_RATE * 100),
            noise=round(LABEL_NOISE_RATE * 100),
        )
        lines += [f"      {line}" for line in wrap(how, 94)]
    return "\n".join(lines) + "\n"


def wrap(text: str, width: int) -> list[str]:
    """Text broken into lines of at most `width` characters at spaces."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return [*lines, current] if current else lines


TICKET_HOW = (
    "Generated by {script} with seed {seed} (random.Random streams seeded per file). Each "
    "ticket draws an intent from fixed traffic shares, a language (80% English, then Spanish, "
    "German, French), a channel (email, chat, web_form; phone_transcript is English-only) and a "
    "plan, then fills hand-written per-intent sentence templates with synthetic names, invoice "
    "and job numbers, dates, amounts and integrations, and renders them in the channel's shape "
    "(subject, greeting and signature for email; lowercase lines for chat; speech-to-text turns "
    "for calls; form fields with a self-chosen category for web forms). Typos and misspellings "
    "are injected. About {ambiguous}% of tickets also make a request of a confusable intent "
    "(tagged flag:ambiguous), about {vague}% of English tickets are vague one-liners, and "
    "{noise}% of labels are flipped, mostly to a confusable intent, to mimic annotation noise. "
    "Every fourth sentence template is held out of the training split, so golden tickets "
    "include phrasings a model has not seen. Texts are unique within and across the golden and "
    "training files. Licence: synthetic data, CC0-1.0; no real customer data."
)
NOTE_HOW = (
    "Generated by {script} with seed {seed} (random.Random streams seeded per file). Each note "
    "picks a trade (hvac, plumbing, electrical, appliance) and one of eight job scenarios per "
    "trade, draws measurements, part numbers, times and names, and assembles 4-9 sentences in "
    "a technician's order: arrival, complaint, diagnosis, work, test reading, customer "
    "interaction, follow-up, with fillers (parking, photos, dispatch check-ins) in between. "
    "The reference summary comes from separate dispatcher templates that paraphrase the "
    "diagnosis, repair and outcome and add the follow-up, so the key facts sit in the middle "
    "and end of the note rather than in its first sentence; every value a summary quotes is in "
    "its note. There is no label noise. Notes are unique within and across the golden and "
    "training files. Licence: synthetic data, CC0-1.0; no real customer data."
)


def build_specs(seed: int) -> list[DatasetSpec]:
    """Every dataset, generated in a fixed order (golden first, so training avoids its texts)."""
    ticket_texts: set[str] = set()
    note_texts: set[str] = set()
    golden_tickets = make_tickets(
        Random(f"{seed}/tickets/golden"), GOLDEN_TICKETS, "tkt-g", ticket_texts, golden=True
    )
    train_tickets = make_tickets(
        Random(f"{seed}/tickets/train"), TRAIN_TICKETS, "tkt-t", ticket_texts, golden=False
    )
    golden_notes = make_notes(Random(f"{seed}/notes/golden"), GOLDEN_NOTES, "note-g", note_texts)
    train_notes = make_notes(Random(f"{seed}/notes/train"), TRAIN_NOTES, "note-t", note_texts)
    return [
        DatasetSpec(
            "support_ticket_intents",
            "classification",
            "intent_classifier",
            "golden",
            "golden/support_ticket_intents.csv",
            "csv",
            golden_tickets,
            TICKET_HOW,
        ),
        DatasetSpec(
            "job_note_summaries",
            "text_generation",
            "summarizer",
            "golden",
            "golden/job_note_summaries.jsonl",
            "jsonl",
            golden_notes,
            NOTE_HOW,
        ),
        DatasetSpec(
            "support_ticket_intents_train",
            "classification",
            "intent_classifier",
            "training",
            "training/support_ticket_intents_train.csv",
            "csv",
            train_tickets,
            TICKET_HOW,
        ),
        DatasetSpec(
            "job_note_summaries_train",
            "text_generation",
            "summarizer",
            "training",
            "training/job_note_summaries_train.jsonl",
            "jsonl",
            train_notes,
            NOTE_HOW,
        ),
    ]


def write_datasets(out_dir: Path, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write every dataset and the manifest under `out_dir`; return the paths written."""
    specs = build_specs(seed)
    written: list[Path] = []
    digests: dict[str, str] = {}
    for spec in specs:
        payload = csv_bytes(spec.rows) if spec.file_format == "csv" else jsonl_bytes(spec.rows)
        target = out_dir / spec.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)
        digests[spec.path] = hashlib.sha256(payload).hexdigest()
        written.append(target)
    manifest = out_dir / "manifest.yaml"
    manifest.write_bytes(manifest_text(specs, digests, seed).encode("utf-8"))
    written.append(manifest)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "datasets",
        help="directory to write into (default: the repository's datasets/)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    for path in write_datasets(args.out, args.seed):
        sys.stdout.write(f"wrote {path} ({path.stat().st_size:,} bytes)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
