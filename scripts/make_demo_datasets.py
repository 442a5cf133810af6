"""Generator of StreamFlow's synthetic demo datasets: support-ticket intents and job-note summaries.

Run from the repository root::

    uv run python scripts/make_demo_datasets.py            # rewrites datasets/
    uv run python scripts/make_demo_datasets.py --out DIR  # writes the same files under DIR

The output is a pure function of the seed: every random choice comes from `random.Random`
streams seeded with strings, nothing iterates over a set, and files are written with fixed
encodings and line endings, so two runs give byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from random import Random
from string import Formatter
from typing import Any

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
# Shared vocabulary
# ---------------------------------------------------------------------------------------------


def words(text: str) -> tuple[str, ...]:
    """A vocabulary list written as one whitespace-separated string."""
    return tuple(text.split())


def phrases(text: str) -> tuple[str, ...]:
    """A vocabulary list written as one string with entries separated by '|'."""
    return tuple(part.strip() for part in text.split("|"))


FIRST_NAMES = {
    "en": words(
        "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Susan "
        "Richard Jessica Joseph Sarah Thomas Karen Chris Lisa Daniel Nancy Matt Betty Anthony "
        "Sandra Mark Ashley Steven Kim Paul Emily Andrew Donna Josh Michelle Kevin Carol Brian "
        "Amanda Priya Wei Omar Aisha Tyrone Keisha"
    ),
    "es": words(
        "María José Carmen Antonio Lucía Javier Ana Manuel Laura Francisco Isabel Miguel Elena "
        "Pablo Rosa Diego"
    ),
    "de": words(
        "Thomas Sabine Michael Petra Andreas Claudia Stefan Monika Jürgen Katrin Frank Anja Uwe "
        "Birgit Tobias Julia"
    ),
    "fr": words(
        "Jean Marie Pierre Nathalie Philippe Isabelle Nicolas Sophie Laurent Céline Julien "
        "Camille François Élodie"
    ),
}
LAST_NAMES = {
    "en": words(
        "Smith Johnson Williams Brown Jones Garcia Miller Davis Wilson Anderson Taylor Thomas "
        "Moore Jackson Martin Lee Thompson White Harris Clark Lewis Walker Hall Young King Wright "
        "Scott Green Baker Nelson Patel Nguyen Kowalski O'Brien Murphy Reyes"
    ),
    "es": words(
        "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Ruiz Díaz Moreno "
        "Muñoz Álvarez"
    ),
    "de": words(
        "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter "
        "Wolf Neumann"
    ),
    "fr": words(
        "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
        "Lefebvre Michel"
    ),
}
TECH_NAMES = words(
    "Mike Dave Carlos Luis Steve Tony Ray Jake Marcus Eddie Hector Brandon Kyle Sam Rick Andre "
    "Pete Jorge"
)
AGENT_NAMES = words("Jenna Tom Alicia Ben Rosa Kyle Megan Dev Hannah Luke")
COMPANY_STEMS = phrases(
    "Apex | Summit | BlueLine | Reliable | Precision | Hometown | Northside | Evergreen | "
    "Lakeshore | Patriot | Sunbelt | Ironwood | Cornerstone | Valley | Metro | Redline | Pioneer | "
    "Granite State | Bayside | Frontier | Keystone | Cardinal | TrueFlow"
)
COMPANY_TRADES = phrases(
    "Plumbing | Plumbing & Heating | HVAC | Heating & Air | Electric | Electrical Services | "
    "Appliance Repair | Mechanical | Home Services | Air Conditioning | Rooter"
)
COMPANY_SUFFIXES = ("", "", " LLC", " Inc", " Co", " & Sons", " Ltd")
STREETS = phrases(
    "Oak St | Maple Ave | Cedar Ln | Pine St | Elm Dr | Washington Blvd | Lakeview Rd | "
    "Hillcrest Dr | Park Ave | Sunset Blvd | Willow Way | Highland Ave | Mill Rd | Church St | "
    "Spring St | Ridge Rd | Meadow Ln | River Rd | Chestnut St | Birch Ct"
)
EMAIL_DOMAINS = words("gmail.com yahoo.com outlook.com hotmail.com icloud.com aol.com")
INTEGRATIONS = phrases(
    "QuickBooks Online | QuickBooks Desktop | Xero | Stripe | Google Calendar | Outlook | Zapier | "
    "HubSpot | Salesforce | Mailchimp | Twilio | Sage | Gusto"
)
SERVICES = phrases(
    "AC tune-up | furnace repair | water heater install | drain cleaning | panel upgrade | "
    "dishwasher repair | annual maintenance visit | outlet replacement | leak repair | "
    "thermostat install | dryer repair | sump pump replacement | EV charger install | "
    "boiler service | garbage disposal install | ceiling fan install"
)
PARTS = phrases(
    "capacitor | drain pump | flapper valve | GFCI outlet | thermostat | igniter | contactor | "
    "fill valve | blower motor | expansion tank | door gasket | heating element"
)
TRADE_WORDS = phrases("plumbing | HVAC | electrical | appliance repair | heating")
PLAN_NAMES = {"starter": "Starter", "pro": "Pro", "enterprise": "Enterprise"}
ERROR_CODES = words("ERR-401 E1043 SYNC_409 AUTH-002 0x80070005 E-5521 TOKEN_EXPIRED")
MONTHS = {
    "en": words(
        "January February March April May June July August September October November December"
    ),
    "es": words(
        "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"
    ),
    "de": words(
        "Januar Februar März April Mai Juni Juli August September Oktober November Dezember"
    ),
    "fr": words(
        "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
    ),
}
WEEKDAYS = {
    "en": words("Monday Tuesday Wednesday Thursday Friday Saturday Sunday"),
    "es": words("lunes martes miércoles jueves viernes sábado domingo"),
    "de": words("Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag"),
    "fr": words("lundi mardi mercredi jeudi vendredi samedi dimanche"),
}

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


EN: dict[str, IntentText] = {
    "billing_question": IntentText(
        core=(
            "I have a question about the bill for the {service} on {date}.",
            'Can you explain what the "service fee" on invoice {inv} is for?',
            "We were charged {amount} this month and I'm not sure what it covers.",
            "Our subscription renewed at {amount} and I'd like to understand how that's worked "
            "out.",
            "Do you accept payment by bank transfer or ACH, or only card?",
            "I'd like to update the credit card we have on file.",
            "When will the payment for invoice {inv} actually be taken from my account?",
            "Is sales tax included in the price you quoted for the {service}?",
            "Where can I download copies of our invoices for our accountant?",
            "Can we switch from monthly to annual billing, and what would that cost on {plan}?",
            "Is there an extra charge per technician on the {plan} plan?",
            "My payment of {amount} still shows as pending, did you receive it?",
            "Is it possible to pay the remaining balance in two installments?",
            "Our statement shows a prorated charge of {amount2} and I don't know what it's for.",
            "Can I get a receipt for the payment I made on {date}?",
            "How much would it cost to add {n} more technician seats?",
            "Do you offer a discount for nonprofits or for paying a year upfront?",
        ),
        detail=(
            "The invoice number is {inv}.",
            "The account is under {email}.",
            "We're on the {plan} plan with {n} technicians.",
            "The charge posted on {date}.",
            "I looked in the billing section but couldn't find an explanation.",
            "Our bookkeeper needs this before month end.",
        ),
        ask=(
            "Could you clarify?",
            "Please let me know.",
            "Any info would be appreciated.",
            "Can someone explain this to me?",
            "Thanks for clarifying.",
            "Just want to make sure I understand the charges.",
        ),
        secondary=(
            "Also, when will my card be charged for that?",
            "Separately, is tax included in that price?",
            "And can I get a copy of the invoice for my records?",
        ),
        vague=("question about my bill", "Billing question, please call me back.", "need info"),
        subjects=(
            "Question about invoice {inv}",
            "Billing question",
            "Charge on my card",
            "Invoice question",
            "Payment",
            "Question",
        ),
        category="Billing & payments",
        persona="either",
    ),
    "invoice_dispute": IntentText(
        core=(
            "Invoice {inv} is for {amount} but the quote we agreed on was {amount2}.",
            "I was billed for {hours} hours of labor, but the technician was here under an hour.",
            "The invoice lists a {part} that was never installed.",
            "We've been charged twice for the same job ({job}).",
            "I was charged a trip fee even though I cancelled the visit the day before.",
            "The discount we were promised is not on invoice {inv}.",
            "Our invoice shows {n} user seats but we only have {m} active users.",
            "The repair was supposed to be under warranty, yet I got a bill for {amount}.",
            "I never approved the extra work that appears on this invoice.",
            "We were charged for the {plan} plan even though we downgraded on {date}.",
            "The after-hours surcharge on {inv} makes no sense, the visit was at {time} on a "
            "weekday.",
            "This invoice is wrong and I want to dispute the {amount} charge.",
            "You charged {amount} for a {part} that costs a third of that at the supply house.",
        ),
        detail=(
            "The job number was {job}.",
            "I have the original quote in writing if you need it.",
            "The technician was {tech}.",
            "I've attached a photo of the quote.",
            "The work was done on {date}.",
            "My bank statement shows both charges on {date}.",
        ),
        ask=(
            "Please correct the invoice and send a new one.",
            "I'd like a refund of the difference.",
            "Please put this invoice on hold until it's sorted out.",
            "I won't be paying this until it's fixed.",
            "Please reverse the duplicate charge.",
            "Can you issue a credit note?",
        ),
        secondary=(
            "And I'm not paying the full amount for that visit.",
            "On top of that, the invoice included a trip fee I never agreed to.",
            "I'd also like the extra charge removed from my bill.",
        ),
        vague=("this invoice is not right", "Wrong amount on my invoice.", "overcharged again"),
        subjects=(
            "Incorrect invoice",
            "Dispute: {inv}",
            "Overcharged",
            "Invoice {inv}",
            "Double charge",
            "Refund request",
        ),
        category="Billing & payments",
        persona="either",
    ),
    "reschedule_appointment": IntentText(
        core=(
            "I need to move my appointment on {date} to later in the week.",
            "Something came up at work, can we reschedule the {service} from {day} to {day2}?",
            "Is there any availability on {day} afternoon instead?",
            "Could the technician come after {time} instead of the morning slot?",
            "We need to push job {job} back a week, the tenant won't be home.",
            "I'd like to change my {time} appointment to a different day.",
            "The 8-12 window doesn't work for me anymore, is there something later?",
            "I'll be traveling on {date}, so please move the visit.",
            "Can we bring the {service} forward? We have a free morning on {day}.",
            "Our office needs to reschedule all of {tech}'s jobs on {date}, he's out sick.",
            "Please change the appointment at {street} to {day2}.",
            "Can the {service} be done the week after instead?",
            "I need to cancel {day}'s appointment and book a new one.",
        ),
        detail=(
            "The confirmation number is {job}.",
            "The appointment is for the {service}.",
            "Any time after {time} works.",
            "I got the reminder text this morning.",
            "Mornings are better for us going forward.",
        ),
        ask=(
            "Let me know what times you have.",
            "Any slot next week works for me.",
            "Please confirm the new time by text.",
            "Thanks for being flexible.",
            "Please call me to set a new time.",
        ),
        secondary=(
            "If that's a problem we can just pick another day.",
            "Could we also book a new time for that?",
            "Otherwise {day2} would work too.",
        ),
        vague=("need to change the date", "Reschedule please", "can we do another day"),
        subjects=(
            "Reschedule appointment",
            "Change of date",
            "Re: your appointment on {date}",
            "Appointment {job}",
            "Can we move the visit?",
        ),
        category="Scheduling",
        persona="customer",
    ),
    "technician_no_show": IntentText(
        core=(
            "The technician was supposed to come today between {time} and {time2} and nobody came.",
            "I took the day off work for the {service} and no one came.",
            "Your tech never arrived for job {job} and nobody called to tell us.",
            "We waited all morning and the appointment window ended an hour ago.",
            "This is the second time your technician didn't show.",
            "The app has said the tech is 'on the way' since {time} but no one is here.",
            "I got a confirmation text yesterday, but nobody turned up.",
            "Our customer called us furious because {tech} never made it to the job on {date}.",
            "{tech} was a no-show for the {time} job at {street}.",
            "Still waiting for the plumber, the window was {time} to {time2}.",
            "Nobody showed up for the {service} we booked for {date}.",
        ),
        detail=(
            "The appointment was booked for {date}.",
            "Job number {job}.",
            "Nobody answered when I called the office.",
            "I had to leave for work at noon.",
            "We still have no hot water.",
            "The house is freezing.",
        ),
        ask=(
            "What happened?",
            "When is someone actually coming?",
            "Please call me back, this is unacceptable.",
            "I expect the trip fee to be waived.",
            "I want a guaranteed time for the next visit.",
        ),
        secondary=(
            "Your technician didn't show up last time either.",
            "The last visit nobody even turned up.",
            "And the tech was a no-show on {date} as well.",
        ),
        vague=("where is the technician??", "No one came.", "still waiting"),
        subjects=(
            "No show",
            "Technician didn't come",
            "Nobody came today",
            "Missed appointment",
            "Where is the technician?",
        ),
        category="Scheduling",
        persona="customer",
    ),
    "account_access": IntentText(
        core=(
            "I can't log in to the dispatcher dashboard, it keeps saying my password is incorrect.",
            "The password reset email never arrives at {email}.",
            "My two-factor codes stopped working after I switched phones.",
            "Our office manager left and we need the admin account transferred to {name}.",
            "One of our technicians is locked out of the mobile app after too many attempts.",
            "I keep getting 'Your session has expired' every time I sign in.",
            "I can't get into the customer portal to see my invoices.",
            "Google sign-in stopped working for our whole team this morning.",
            "The login page just spins and never loads.",
            "{tech} can't see any jobs after logging in, it says he has no permissions.",
            "I changed my email address and now I can't sign in with either one.",
        ),
        detail=(
            "My username is {email}.",
            "I already tried clearing my cache and a different browser.",
            "The error code is {error_code}.",
            "It worked fine yesterday.",
            "We're on the {plan} plan.",
        ),
        ask=(
            "Please help, we can't dispatch anything until this is fixed.",
            "Can you unlock the account?",
            "Can you reset it from your side?",
            "How do I get back in?",
            "Please advise.",
        ),
        secondary=(
            "I'd check the invoice myself but I can't log in right now.",
            "My login isn't working either.",
            "Also, my password reset link has expired.",
        ),
        vague=("cant get in", "Login problem", "locked out"),
        subjects=(
            "Can't log in",
            "Locked out",
            "Password reset not working",
            "Login issue",
            "2FA problem",
            "Access",
        ),
        category="Account & login",
        persona="tenant",
    ),
    "integration_issue": IntentText(
        core=(
            "Invoices stopped syncing to {integration} on {date}.",
            "The {integration} connection says the token has expired and reconnecting fails.",
            "Jobs created in the app no longer appear in {integration}.",
            "Payments recorded through Stripe show as unpaid in QuickBooks.",
            "Our Zapier zap that creates jobs from web leads stopped triggering.",
            "We're getting duplicate customers in {integration} after every sync.",
            "The API returns a 401 when we call the /v2/jobs endpoint with our key.",
            "Webhooks for job.completed stopped reaching our server yesterday.",
            "Tax codes are mapped incorrectly when invoices export to {integration}.",
            "Appointments don't show up in the techs' Google calendars anymore.",
            "The sync log shows error {error_code} for every invoice since the last update.",
        ),
        detail=(
            "Nothing changed on our side.",
            "The last successful sync was on {date}.",
            "We reconnected twice already.",
            "About {n} invoices are affected.",
            "Our accountant noticed the numbers don't match.",
        ),
        ask=(
            "Can you look into the integration logs?",
            "Please escalate to your engineering team.",
            "How do we get it syncing again?",
            "Is there a known outage?",
            "Our month-end close depends on this.",
        ),
        secondary=(
            "It also doesn't show up in {integration}.",
            "The sync with {integration} looks broken too.",
            "On top of that the {integration} export fails.",
        ),
        vague=("sync broken again", "Integration not working", "{integration} issue"),
        subjects=(
            "{integration} sync broken",
            "Integration issue",
            "API error {error_code}",
            "Sync failing",
            "Webhook problem",
        ),
        category="Technical problem",
        persona="tenant",
    ),
    "cancel_subscription": IntentText(
        core=(
            "We'd like to cancel our subscription at the end of the current billing period.",
            "Please close our account, we're selling the business.",
            "We've decided to move to another software and won't be renewing.",
            "How do I cancel? I can't find the option anywhere in settings.",
            "Please turn off auto-renewal, we no longer need the {plan} plan.",
            "I'm retiring at the end of the month, please cancel so we aren't charged again.",
            "We want to cancel and would need an export of all our customer and job data first.",
            "Cancel our account effective {date}, please.",
            "The software is too expensive for a {n}-person shop, so we're cancelling.",
            "We're shutting down our {trade} business and need to end our contract.",
        ),
        detail=(
            "Our account email is {email}.",
            "We've been customers for {years} years.",
            "Our renewal date is {date}.",
            "{company} is the account name.",
            "We have {n} technician seats.",
        ),
        ask=(
            "Please confirm once it's done.",
            "Please send written confirmation of the cancellation.",
            "Let me know if you need anything else from me.",
            "Do we get a refund for the unused months?",
            "Don't try to talk me out of it, please just cancel.",
        ),
        secondary=(
            "Honestly, if this keeps happening we'll cancel.",
            "We're seriously considering cancelling our plan over this.",
            "Otherwise we'll have to cancel.",
        ),
        vague=("how do i stop this", "Cancel please", "close my account"),
        subjects=(
            "Cancellation",
            "Cancel subscription",
            "Close account",
            "Non-renewal notice",
            "Ending our contract",
        ),
        category="Billing & payments",
        persona="tenant",
    ),
    "feature_request": IntentText(
        core=(
            "It would be great if technicians could attach photos to the invoice.",
            "Are there any plans to support recurring maintenance contracts?",
            "Could you add an option to send appointment reminders by WhatsApp?",
            "We'd love a map view showing all techs on the dispatch board.",
            "Please add the ability to split an invoice between two payers.",
            "Is there a way to put our logo on the invoice template? If not, please add it.",
            "Feature request: an offline mode for the mobile app, our guys work in basements.",
            "It would help a lot if the calendar showed travel time between jobs.",
            "A Spanish version of the customer portal would be really useful for our clients.",
            "Could the price book support different rates for after-hours work?",
            "We'd like customers to be able to tip the technician when paying online.",
            "Any chance of a dark mode for the dispatcher screen?",
        ),
        detail=(
            "Our competitors' tools already do this.",
            "We have {n} technicians who would use it daily.",
            "Right now we work around it with spreadsheets.",
            "Happy to beta test.",
            "This came up at our last team meeting.",
        ),
        ask=(
            "Is this on the roadmap?",
            "Thanks for considering it.",
            "Let me know if this is planned.",
            "Would love to hear back.",
            "Just a suggestion.",
        ),
        secondary=(
            "It would be nice if the app did this automatically.",
            "Maybe add an option for that in a future release.",
            "A setting for that would be a good feature.",
        ),
        vague=("suggestion for the app", "Idea for you guys", "feature idea"),
        subjects=("Feature request", "Suggestion", "Idea", "Product feedback", "Nice to have"),
        category="Feedback",
        persona="tenant",
    ),
}

# Short tickets in other languages: per intent a handful of real-looking sentences.
FOREIGN: dict[str, dict[str, tuple[str, ...]]] = {
    "es": {
        "billing_question": (
            "Tengo una duda sobre la factura {inv}, ¿qué incluye el cargo de servicio?",
            "¿Puedo pagar con transferencia bancaria?",
            "Quisiera actualizar la tarjeta de crédito de nuestra cuenta.",
            "¿Cuándo se cobra la renovación del plan {plan}?",
            "No entiendo el importe de {amount} en el último recibo.",
            "¿El precio de la visita incluye el IVA?",
        ),
        "invoice_dispute": (
            "La factura {inv} es de {amount} pero el presupuesto era de {amount2}.",
            "Nos han cobrado dos veces el mismo trabajo.",
            "El técnico estuvo menos de una hora y me cobran tres horas de mano de obra.",
            "Me cobraron una pieza que no se instaló.",
            "Solicito la corrección de la factura y el reembolso de la diferencia.",
        ),
        "reschedule_appointment": (
            "Necesito cambiar la cita del {date} a otro día.",
            "¿Es posible pasar la visita al {day} por la tarde?",
            "No voy a estar en casa el día de la cita, ¿podemos cambiarla?",
            "¿Tienen disponibilidad la próxima semana?",
            "Prefiero que el técnico venga después de las {time}.",
        ),
        "technician_no_show": (
            "El técnico no vino hoy y nadie nos avisó.",
            "Estuvimos esperando toda la mañana y no apareció nadie.",
            "Es la segunda vez que el técnico no se presenta.",
            "Teníamos cita entre las {time} y las {time2} y no llegó nadie.",
            "Pedí el día libre en el trabajo para nada.",
        ),
        "account_access": (
            "No puedo iniciar sesión en la aplicación, dice que la contraseña es incorrecta.",
            "No me llega el correo para restablecer la contraseña.",
            "Uno de nuestros técnicos tiene la cuenta bloqueada.",
            "El código de verificación no funciona desde que cambié de móvil.",
        ),
        "integration_issue": (
            "Las facturas ya no se sincronizan con {integration}.",
            "La conexión con {integration} da error y no se puede reconectar.",
            "Los pagos aparecen duplicados en {integration}.",
            "Desde la última actualización la sincronización falla con el error {error_code}.",
        ),
        "cancel_subscription": (
            "Queremos cancelar la suscripción al final de este mes.",
            "Por favor, den de baja nuestra cuenta, cerramos el negocio.",
            "No vamos a renovar el plan {plan}.",
            "¿Cómo cancelo la suscripción? No encuentro la opción.",
        ),
        "feature_request": (
            "Sería muy útil poder adjuntar fotos a las facturas.",
            "¿Tienen pensado añadir recordatorios por WhatsApp?",
            "Nos gustaría ver a todos los técnicos en un mapa.",
            "Estaría bien que la app funcionara sin conexión.",
        ),
    },
    "de": {
        "billing_question": (
            "Ich habe eine Frage zur Rechnung {inv}: Wofür ist die Servicepauschale?",
            "Kann ich auch per Überweisung bezahlen?",
            "Wir möchten die hinterlegte Kreditkarte ändern.",
            "Wann wird die Verlängerung des {plan}-Tarifs abgebucht?",
            "Der Betrag von {amount} auf der letzten Abrechnung ist mir nicht klar.",
            "Ist die Mehrwertsteuer im Preis enthalten?",
        ),
        "invoice_dispute": (
            "Die Rechnung {inv} lautet auf {amount}, vereinbart waren aber {amount2}.",
            "Uns wurde derselbe Auftrag zweimal berechnet.",
            "Der Techniker war keine Stunde da, berechnet wurden aber drei Stunden.",
            "Auf der Rechnung steht ein Ersatzteil, das nie eingebaut wurde.",
            "Bitte korrigieren Sie die Rechnung und erstatten Sie die Differenz.",
        ),
        "reschedule_appointment": (
            "Ich muss den Termin am {date} leider verschieben.",
            "Wäre auch {day} Nachmittag möglich?",
            "Können wir den Termin auf nächste Woche legen?",
            "Am vereinbarten Tag bin ich nicht zu Hause.",
            "Könnte der Monteur erst nach {time} Uhr kommen?",
        ),
        "technician_no_show": (
            "Der Techniker ist heute nicht gekommen und niemand hat angerufen.",
            "Wir haben den ganzen Vormittag gewartet, aber es kam niemand.",
            "Das ist schon das zweite Mal, dass der Monteur nicht erscheint.",
            "Der Termin war zwischen {time} und {time2} Uhr, es ist niemand aufgetaucht.",
            "Ich habe mir extra freigenommen, und keiner kam.",
        ),
        "account_access": (
            "Ich kann mich nicht mehr anmelden, angeblich ist das Passwort falsch.",
            "Die E-Mail zum Zurücksetzen des Passworts kommt nicht an.",
            "Einer unserer Monteure ist in der App gesperrt.",
            "Der Bestätigungscode funktioniert seit dem Handywechsel nicht mehr.",
        ),
        "integration_issue": (
            "Die Rechnungen werden nicht mehr mit {integration} synchronisiert.",
            "Die Verbindung zu {integration} bricht ständig ab.",
            "Zahlungen erscheinen doppelt in {integration}.",
            "Seit dem letzten Update schlägt der Abgleich mit Fehler {error_code} fehl.",
        ),
        "cancel_subscription": (
            "Wir möchten unser Abonnement zum Monatsende kündigen.",
            "Bitte schließen Sie unser Konto, wir geben den Betrieb auf.",
            "Wir werden den {plan}-Tarif nicht verlängern.",
            "Wie kann ich kündigen? Ich finde die Option nicht.",
        ),
        "feature_request": (
            "Es wäre super, wenn man Fotos an Rechnungen anhängen könnte.",
            "Ist geplant, Terminerinnerungen per WhatsApp zu verschicken?",
            "Wir wünschen uns eine Kartenansicht aller Techniker.",
            "Ein Offline-Modus für die App wäre sehr hilfreich.",
        ),
    },
    "fr": {
        "billing_question": (
            "J'ai une question sur la facture {inv} : à quoi correspondent les frais de service ?",
            "Est-il possible de payer par virement ?",
            "Je voudrais mettre à jour la carte bancaire de notre compte.",
            "Quand le renouvellement de l'abonnement {plan} sera-t-il prélevé ?",
            "Je ne comprends pas le montant de {amount} sur le dernier relevé.",
        ),
        "invoice_dispute": (
            "La facture {inv} s'élève à {amount} alors que le devis était de {amount2}.",
            "On nous a facturé deux fois la même intervention.",
            "Le technicien est resté moins d'une heure mais on me facture trois heures.",
            "Une pièce facturée n'a jamais été installée.",
            "Merci de corriger la facture et de rembourser la différence.",
        ),
        "reschedule_appointment": (
            "Je dois déplacer le rendez-vous du {date}.",
            "Serait-il possible de passer {day} après-midi ?",
            "Je ne serai pas chez moi ce jour-là, pouvons-nous reporter ?",
            "Avez-vous des disponibilités la semaine prochaine ?",
        ),
        "technician_no_show": (
            "Le technicien n'est pas venu aujourd'hui et personne ne nous a prévenus.",
            "Nous avons attendu toute la matinée, personne n'est venu.",
            "C'est la deuxième fois que le technicien ne se présente pas.",
            "Le rendez-vous était entre {time} et {time2}, personne n'est passé.",
        ),
        "account_access": (
            "Je n'arrive plus à me connecter, le mot de passe est refusé.",
            "Je ne reçois pas l'e-mail de réinitialisation du mot de passe.",
            "Un de nos techniciens est bloqué dans l'application.",
            "Le code de vérification ne fonctionne plus depuis que j'ai changé de téléphone.",
        ),
        "integration_issue": (
            "Les factures ne se synchronisent plus avec {integration}.",
            "La connexion à {integration} affiche une erreur.",
            "Les paiements apparaissent en double dans {integration}.",
        ),
        "cancel_subscription": (
            "Nous souhaitons résilier notre abonnement à la fin du mois.",
            "Merci de fermer notre compte, nous cessons l'activité.",
            "Nous ne renouvellerons pas l'abonnement {plan}.",
        ),
        "feature_request": (
            "Ce serait pratique de pouvoir joindre des photos aux factures.",
            "Prévoyez-vous des rappels de rendez-vous par WhatsApp ?",
            "Une vue carte de tous les techniciens nous serait très utile.",
        ),
    },
}

UNCLEAR_TICKETS = (
    "Please call me back, it's about {job}.",
    "I have a problem with my account, can someone call me?",
    "Need help with {inv} asap.",
    "Can someone from your team reach out to me today?",
    "Following up again, still no answer.",
    "Question about my appointment and the bill.",
)
EN_GREETINGS = (
    "Hi,",
    "Hello,",
    "Hi there,",
    "Hello team,",
    "Dear Support,",
    "Good morning,",
    "Hey,",
    "To whom it may concern,",
    "Hi {agent},",
    "Good afternoon,",
)
EN_CONTEXT = (
    "Hope you're well.",
    "I'm the office manager at {company}.",
    "We've been using your software for about {years} years.",
    "I already called yesterday but nobody got back to me.",
    "Sorry if this is the wrong place to ask.",
    "I'm writing on behalf of my mother, who is the account holder.",
    "Following up on my earlier message.",
    "Quick question.",
    "Not sure who to contact about this.",
)
EN_CLOSINGS = (
    "Thanks,",
    "Thank you,",
    "Regards,",
    "Best,",
    "Cheers,",
    "Thanks in advance,",
    "Kind regards,",
    "Thanks!",
)
FOREIGN_GREETINGS = {
    "es": ("Hola,", "Buenos días,", "Buenas tardes,", "Estimados señores:"),
    "de": ("Hallo,", "Guten Tag,", "Sehr geehrte Damen und Herren,", "Moin,"),
    "fr": ("Bonjour,", "Bonsoir,", "Madame, Monsieur,"),
}
FOREIGN_CLOSINGS = {
    "es": ("Gracias.", "Saludos,", "Un saludo,", "Muchas gracias de antemano."),
    "de": ("Danke!", "Viele Grüße", "Mit freundlichen Grüßen", "Beste Grüße"),
    "fr": ("Merci.", "Cordialement,", "Bien à vous,", "Merci d'avance."),
}
FOREIGN_SUBJECTS = {
    "es": ("Consulta", "Ayuda", "Urgente", "Pregunta", "Re: su mensaje"),
    "de": ("Anfrage", "Hilfe", "Dringend", "Frage", "AW: Ihre Nachricht"),
    "fr": ("Demande", "Aide", "Urgent", "Question", "RE: votre message"),
}
GENERIC_SUBJECTS = ("Help", "Urgent!!", "(no subject)", "Question", "Support request", "Hello")
FORM_CATEGORIES = (
    "Billing & payments",
    "Scheduling",
    "Technical problem",
    "Account & login",
    "Feedback",
)
PHONE_OPENERS = (
    "Thank you for calling {company}, this is {agent}, how can I help you?",
    "Support, this is {agent} speaking.",
    "Hi, you've reached customer support, my name is {agent}.",
    "Thanks for holding, this is {agent}, what can I do for you today?",
)
# What the agent asks for, and which slot the caller answers with.
PHONE_PROMPTS = (
    ("Okay, can I get the job or invoice number?", "job"),
    ("Sure, what's the invoice number?", "inv"),
    ("I'm sorry to hear that. Can I get the email on the account?", "email"),
    ("Alright, and who am I speaking with?", "full_name"),
    ("Sure, let me pull that up. What's the job number?", "job"),
)
PHONE_WRAPS = (
    "Okay, I've made a note on the account and someone will follow up.",
    "Alright, I'll pass this to the right team.",
    "Understood, I'll get that sorted for you.",
    "Thanks, I'll look into it and call you back.",
)
FILLERS = ("um", "uh", "so", "like", "yeah", "okay so")
MISSPELLINGS = {
    "receive": "recieve",
    "appointment": "appointmnet",
    "definitely": "definately",
    "tomorrow": "tommorow",
    "schedule": "schedual",
    "separate": "seperate",
    "account": "acount",
    "invoice": "invoce",
    "password": "pasword",
    "technician": "technitian",
    "cancel": "cancell",
    "business": "buisness",
}
KEY_NEIGHBOURS = {
    "a": "qs",
    "e": "wr",
    "i": "uo",
    "o": "ip",
    "n": "bm",
    "s": "ad",
    "t": "ry",
    "r": "et",
    "l": "k",
    "c": "xv",
    "h": "gj",
    "d": "sf",
    "m": "n",
    "u": "yi",
    "g": "fh",
    "p": "o",
}


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


HVAC_UNITS = pick(
    "Carrier condenser",
    "Goodman 3-ton condenser",
    "Trane XR13 condenser",
    "Rheem condensing unit",
    "Lennox XC16 condenser",
)
FURNACES = pick(
    "Carrier 59SC furnace", "Goodman GMVC96 furnace", "Lennox EL296 furnace", "Rheem gas furnace"
)
AIR_HANDLERS = pick(
    "attic air handler", "Goodman air handler", "closet air handler", "Trane air handler"
)
HEAT_PUMPS = pick(
    "Trane XR15 heat pump", "Carrier heat pump", "Goodman heat pump", "Rheem heat pump"
)
FRIDGES = pick(
    "Samsung French door fridge", "Whirlpool side-by-side", "GE refrigerator", "LG refrigerator"
)


def scaled(source: str, low: float, high: float) -> Slot:
    """A slot that takes a fraction of a number drawn earlier."""
    return lambda r, s: f"{float(s[source]) * r.uniform(low, high):.1f}"


SCENARIOS: tuple[Scenario, ...] = (
    # ----- HVAC -----
    Scenario(
        trade="hvac",
        key="run_capacitor",
        slots={
            "equip": HVAC_UNITS,
            "rated": pick("35", "40", "45", "50"),
            "measured": scaled("rated", 0.35, 0.75),
            "amps": number(8, 14, 1),
            "supply": number(52, 58),
            "dt": number(17, 22),
            "pn": part_number("hvac"),
        },
        symptom=(
            "AC running but blowing warm air",
            "no cooling since yesterday afternoon",
            "outdoor unit humming with the fan not spinning",
        ),
        diagnosis=(
            "Found the dual run capacitor on the {equip} bulged, reading {measured} µF on the HERM "
            "side (rated {rated} µF).",
            "Condenser fan not starting; capacitor tested at {measured} µF against a {rated} µF "
            "rating.",
        ),
        action=(
            "Replaced it with a {rated}/5 µF 440V dual run capacitor, P/N {pn}, from van stock.",
            "Installed a new {rated}/5 µF capacitor (P/N {pn}).",
        ),
        test=(
            "Restarted the system: compressor drawing {amps} A, supply air {supply}°F, delta T "
            "{dt}°F.",
            "Ran the unit 20 min, supply air {supply}°F with a {dt}°F split across the coil.",
        ),
        summary=(
            "AC was not cooling because the run capacitor on the {equip} had failed; capacitor "
            "replaced and the system is cooling normally again ({dt}°F split).",
            "Weak {rated} µF run capacitor swapped out on the {equip}, so the AC is back to "
            "cooling "
            "properly.",
        ),
        extra=("Contactor points pitted but still OK.", "Condenser coil moderately dirty."),
    ),
    Scenario(
        trade="hvac",
        key="flame_sensor",
        slots={"equip": FURNACES, "ua": number(0.3, 1.2, 1), "ua2": number(3.5, 6.0, 1)},
        symptom=(
            "furnace turning on then shutting off after a few seconds",
            "no heat with the furnace short cycling",
            "furnace locking out overnight",
        ),
        diagnosis=(
            "Board flashing 3 blinks for flame loss; flame sensor heavily oxidized, signal {ua} "
            "µA.",
            "Flame lights then drops out after 6 seconds on the {equip}; flame sensor reading only "
            "{ua} µA.",
        ),
        action=(
            "Pulled and cleaned the flame sensor with fine emery cloth and checked the ground "
            "wire.",
            "Cleaned the flame sensor and burners, then cycled the furnace 3 times.",
        ),
        test=(
            "Flame signal now {ua2} µA and the furnace runs full cycles.",
            "After cleaning the signal is steady at {ua2} µA, no more lockouts.",
        ),
        summary=(
            "Furnace short cycling was caused by a dirty flame sensor; cleaned it and the furnace "
            "now runs full heat cycles ({ua2} µA).",
            "No-heat call on the {equip} fixed by cleaning the oxidized flame sensor.",
        ),
        extra=("Filter was very dirty, replaced it with a new 16x25x1.",),
    ),
    Scenario(
        trade="hvac",
        key="condensate",
        slots={"equip": AIR_HANDLERS},
        symptom=(
            "water dripping from the ceiling under the attic unit",
            "AC shut off and will not restart",
        ),
        diagnosis=(
            "Secondary pan full and float switch tripped; primary drain line clogged with algae.",
            "Condensate line on the {equip} plugged solid, float switch had cut power to the unit.",
        ),
        action=(
            "Cleared the drain line with a wet vac from outside, flushed it with vinegar and added "
            "pan tablets.",
            "Blew out the condensate line, cleaned the trap and reset the float switch.",
        ),
        test=(
            "Poured water in the pan and it drains freely; system back on and cooling.",
            "Unit restarted and condensate is flowing outside.",
        ),
        summary=(
            "AC was shut down by a clogged condensate drain that tripped the float switch; line "
            "cleared and flushed, system running again.",
            "Cleared a plugged condensate line on the {equip} that had tripped the safety switch.",
        ),
        extra=("Ceiling drywall below has a water stain, told customer it should dry out.",),
    ),
    Scenario(
        trade="hvac",
        key="refrigerant_leak",
        slots={
            "psi": number(68, 95),
            "sh": number(22, 35),
            "lbs": number(1.5, 4.0, 1),
            "supply": number(54, 60),
            "quote": number(1400, 2900),
        },
        symptom=("ice on the refrigerant lines", "AC running constantly and not keeping up"),
        diagnosis=(
            "Suction pressure {psi} psig with {sh}°F superheat; electronic detector found a leak "
            "at "
            "the evaporator coil.",
            "System low on charge; bubble test found a leak at the evaporator coil U-bends.",
        ),
        action=(
            "Added {lbs} lb of R-410A to get the system running for now.",
            "Topped off with {lbs} lb R-410A as a temporary fix.",
        ),
        test=(
            "Suction back to 118 psig, supply air {supply}°F.",
            "Lines no longer icing, cooling restored for now.",
        ),
        summary=(
            "Iced lines were caused by a refrigerant leak at the evaporator coil; added {lbs} lb "
            "R-410A as a stopgap.",
            "Leaking evaporator coil found, system recharged with {lbs} lb R-410A to keep it "
            "going.",
        ),
        followups=(
            (
                "Evaporator coil needs replacing; quote for ${quote} emailed, customer to decide.",
                "Coil replacement quoted at ${quote}, waiting on the customer.",
            ),
            (
                "Recommended a new coil, quote ${quote} left with the customer.",
                "Customer has a ${quote} quote for a new evaporator coil.",
            ),
        ),
    ),
    Scenario(
        trade="hvac",
        key="blower_motor",
        slots={
            "equip": pick("Carrier 59SC furnace", "Goodman air handler", "Lennox furnace"),
            "amps": number(3.5, 6.5, 1),
            "pn": part_number("hvac"),
        },
        symptom=("no air coming from the vents", "burning smell from the furnace and no airflow"),
        diagnosis=(
            "Blower motor on the {equip} seized, windings read open.",
            "Blower motor hot to the touch and not turning; capacitor tested fine.",
        ),
        action=(
            "Installed a new 1/2 HP blower motor (P/N {pn}) and a 10 µF run capacitor.",
            "Replaced the blower motor and capacitor, cleaned the blower wheel.",
        ),
        test=(
            "Airflow back at all registers, motor drawing {amps} A.",
            "Blower running at {amps} A, supply air normal.",
        ),
        summary=(
            "No airflow because the blower motor seized; motor and capacitor replaced and airflow "
            "is restored.",
            "Swapped the failed blower motor on the {equip}, system moving air again.",
        ),
    ),
    Scenario(
        trade="hvac",
        key="thermostat_fuse",
        slots={"equip": FURNACES},
        symptom=("thermostat screen blank", "no heat or cooling and a dead thermostat"),
        diagnosis=(
            "Blown 3 A fuse on the control board; thermostat wire chafed on the cabinet and "
            "shorting.",
            "Transformer OK at 24 V but the board fuse is blown from a shorted thermostat cable.",
        ),
        action=(
            "Repaired the chafed wire, added a grommet and replaced the 3 A fuse.",
            "Spliced out the damaged section of thermostat cable and replaced the fuse.",
        ),
        test=(
            "Thermostat powered up, tested heat and cool.",
            "Ran heat and AC from the thermostat, both work.",
        ),
        summary=(
            "Blank thermostat caused by a shorted thermostat wire blowing the board fuse; wire "
            "repaired and fuse replaced.",
            "Fixed a chafed thermostat cable and replaced the blown board fuse.",
        ),
    ),
    Scenario(
        trade="hvac",
        key="defrost_sensor",
        slots={
            "equip": HEAT_PUMPS,
            "temp": number(18, 30),
            "supply": number(92, 104),
            "pn": part_number("hvac"),
        },
        symptom=(
            "heat pump outdoor unit covered in ice",
            "poor heat with the outdoor coil iced up",
        ),
        diagnosis=(
            "Outdoor coil iced solid; defrost sensor reads open at {temp}°F.",
            "The {equip} never enters defrost, sensor failed open.",
        ),
        action=(
            "Ran a forced defrost and replaced the defrost sensor (P/N {pn}).",
            "Replaced the defrost sensor and cleared the ice with a forced defrost.",
        ),
        test=(
            "Unit completed a defrost cycle on test, heating normally.",
            "Supply air {supply}°F in heat mode.",
        ),
        summary=(
            "Heat pump iced over because the defrost sensor failed; sensor replaced and defrost "
            "working.",
            "Bad defrost sensor on the {equip} replaced, heating restored.",
        ),
    ),
    Scenario(
        trade="hvac",
        key="tune_up",
        slots={
            "rated": pick("35", "40", "45"),
            "measured": scaled("rated", 0.92, 1.0),
            "sh": number(8, 14),
            "supply": number(53, 57),
            "dt": number(17, 21),
        },
        symptom=("spring AC maintenance", "annual maintenance visit"),
        diagnosis=(
            "All electrical readings in range, capacitor at {measured} of {rated} µF.",
            "Coil moderately dirty, refrigerant charge correct at {sh}°F superheat.",
        ),
        action=(
            "Replaced the 16x25x1 filter, washed the condenser coil and flushed the drain line.",
            "Cleaned the condenser coil, changed the filter and tightened electrical connections.",
        ),
        test=(
            "Supply {supply}°F, delta T {dt}°F, system operating normally.",
            "Everything within spec after the service.",
        ),
        summary=(
            "Routine AC maintenance done: filter replaced and condenser coil cleaned; system "
            "operating normally.",
            "Annual tune-up completed with readings in spec (delta T {dt}°F), no repairs needed.",
        ),
    ),
    # ----- Plumbing -----
    Scenario(
        trade="plumbing",
        key="water_heater_leak",
        slots={
            "equip": pick(
                "40-gal Rheem gas water heater",
                "50-gal AO Smith water heater",
                "40-gal Bradford White tank",
            ),
            "age": number(11, 19),
            "quote": number(1650, 2800),
        },
        symptom=(
            "water on the garage floor around the water heater",
            "no hot water and a puddle under the tank",
        ),
        diagnosis=(
            "Tank is leaking from the bottom seam; unit is {age} years old, anode fully gone.",
            "Water coming from under the jacket, not the fittings: internal tank failure on "
            "the {equip}.",
        ),
        action=(
            "Shut off the gas and cold supply, drained the tank and capped the lines.",
            "Isolated the heater and drained it to the floor drain, set a drip pan.",
        ),
        test=(
            "Confirmed no more water on the floor after 20 min.",
            "Area dry after shutting everything off.",
        ),
        summary=(
            "The {age}-year-old water heater has a failed tank; it was shut off and drained to "
            "stop "
            "the leak and needs replacing.",
            "Leaking water heater tank isolated and drained, unit is at end of life.",
        ),
        followups=(
            (
                "Quoted a replacement {equip} for ${quote}; install can be done {day} if approved.",
                "Replacement heater quoted at ${quote}, install {day} if approved.",
            ),
            (
                "Customer approved a new 50-gal heater at ${quote}, booked for {day}.",
                "New heater (${quote}) approved and scheduled for {day}.",
            ),
        ),
    ),
    Scenario(
        trade="plumbing",
        key="kitchen_drain",
        slots={"ft": number(15, 45)},
        symptom=(
            "kitchen sink backing up into the other basin",
            "slow kitchen drain, now fully clogged",
        ),
        diagnosis=(
            "Standing water in both basins; blockage past the trap, roughly {ft} ft down.",
            "Trap is clear, the clog is further down the kitchen branch line.",
        ),
        action=(
            "Ran a 1/2-inch cable {ft} ft from the cleanout and pulled out heavy grease.",
            "Snaked the line through the cleanout to {ft} ft and broke up a grease plug.",
        ),
        test=("Flushed with hot water for 10 min, draining freely.", "Both basins drain fast now."),
        summary=(
            "Kitchen line was clogged with grease about {ft} ft down; cabled it from the cleanout "
            "and it drains freely now.",
            "Cleared a grease blockage in the kitchen drain ({ft} ft in).",
        ),
        extra=("Told customer to stop pouring bacon grease down the sink.",),
    ),
    Scenario(
        trade="plumbing",
        key="running_toilet",
        slots={"pn": part_number("plumbing")},
        symptom=("toilet running nonstop", "toilet refilling on its own every few minutes"),
        diagnosis=(
            "Flapper warped and the fill valve is not shutting off, water running into the "
            "overflow.",
            "Flapper is leaking into the bowl and the fill valve is worn.",
        ),
        action=(
            "Replaced the fill valve (Fluidmaster 400A, P/N {pn}) and the flapper.",
            "Installed a new fill valve and 2-inch flapper, adjusted the water level.",
        ),
        test=(
            "Tank holds water, no ghost flushing after 15 min.",
            "Dye test passed with no leak into the bowl.",
        ),
        summary=(
            "Running toilet fixed by replacing the worn fill valve and warped flapper.",
            "Toilet kept running; new fill valve and flapper installed and it holds water now.",
        ),
    ),
    Scenario(
        trade="plumbing",
        key="faucet_cartridge",
        slots={"drips": number(20, 60), "pn": part_number("plumbing")},
        symptom=("dripping kitchen faucet", "bathroom faucet will not shut off fully"),
        diagnosis=(
            "Cartridge worn, dripping about {drips} drops per minute at the spout.",
            "O-rings on the cartridge are shot, leaking around the handle too.",
        ),
        action=(
            "Replaced the cartridge (Moen 1225, P/N {pn}) and greased the O-rings.",
            "Swapped in a new Moen 1225 cartridge with new O-rings.",
        ),
        test=(
            "No drip after 10 min, hot and cold correct.",
            "Handle operates smoothly, no leaks on hot or cold.",
        ),
        summary=(
            "Dripping faucet repaired with a new Moen 1225 cartridge.",
            "Worn faucet cartridge replaced, leak has stopped.",
        ),
    ),
    Scenario(
        trade="plumbing",
        key="root_intrusion",
        slots={"ft": number(35, 80), "quote": number(3800, 7900)},
        symptom=(
            "sewage backing up into the basement floor drain",
            "toilets gurgling and the basement drain backing up",
        ),
        diagnosis=(
            "Camera inspection found heavy root intrusion at {ft} ft, near the property line.",
            "Ran the camera from the main cleanout, roots at a clay joint {ft} ft out.",
        ),
        action=(
            "Cleared the main with a 4-inch root cutter and recovered a large root mass.",
            "Cut the roots with the drum machine and flushed the line.",
        ),
        test=(
            "Line draining, camera shows the joint open but offset.",
            "Flow restored, ran water in all fixtures with no backup.",
        ),
        summary=(
            "Main sewer backup was caused by roots at {ft} ft; cleared with a root cutter and flow "
            "is restored.",
            "Roots in the clay sewer line ({ft} ft) were cut out, drains working again.",
        ),
        followups=(
            (
                "Recommended trenchless lining of the clay section; quote for ${quote} emailed.",
                "Pipe lining for the clay section quoted at ${quote}.",
            ),
            (
                "Recommend root maintenance every 12 months until the line is replaced.",
                "Advised yearly root cutting until the sewer line is replaced.",
            ),
        ),
    ),
    Scenario(
        trade="plumbing",
        key="prv",
        slots={"psi": number(95, 140), "pn": part_number("plumbing")},
        symptom=("banging pipes and a leaking relief valve", "water pressure way too high"),
        diagnosis=(
            "Static pressure {psi} psi at the hose bib; pressure reducing valve has failed.",
            "PRV not regulating, gauge reads {psi} psi.",
        ),
        action=(
            "Replaced the 3/4-inch PRV (Watts LF25AUB, P/N {pn}) and set it to 60 psi.",
            "Installed a new pressure reducing valve and adjusted it to 60 psi.",
        ),
        test=(
            "Pressure holding at 60 psi, no banging pipes.",
            "Checked again after 15 min, steady at 60 psi.",
        ),
        summary=(
            "High water pressure ({psi} psi) came from a failed PRV; new valve installed and set "
            "to 60 psi.",
            "Failed pressure reducing valve replaced, house pressure now 60 psi.",
        ),
    ),
    Scenario(
        trade="plumbing",
        key="under_sink_leak",
        slots={},
        symptom=("leak under the bathroom sink", "wet cabinet under the kitchen sink"),
        diagnosis=(
            "Compression nut on the hot angle stop leaking; braided supply hose corroded too.",
            "Leak from the cold supply connection, angle stop corroded.",
        ),
        action=(
            "Replaced both angle stops and the braided supply lines.",
            "Installed new quarter-turn angle stops and new 20-inch supply lines.",
        ),
        test=(
            "Pressurised and checked with a paper towel, no leaks.",
            "Dry after 15 min under full pressure.",
        ),
        summary=(
            "Sink leak traced to corroded angle stops; both stops and supply lines replaced.",
            "Leaking supply connection under the sink fixed with new shutoffs and lines.",
        ),
        extra=("Cabinet floor is swollen from the water, customer will get it replaced.",),
    ),
    Scenario(
        trade="plumbing",
        key="sump_pump",
        slots={"amps": number(7, 12, 1), "inch": number(8, 14), "pn": part_number("plumbing")},
        symptom=(
            "sump pit nearly full and the pump not running",
            "basement alarm going off with the sump not pumping",
        ),
        diagnosis=(
            "Pump motor is dead: draws {amps} A but does not turn, float also sticking.",
            "Float switch stuck and the pump motor seized.",
        ),
        action=(
            "Installed a new 1/3 HP Zoeller M53 sump pump (P/N {pn}) with a new check valve.",
            "Put in a 1/3 HP Zoeller pump and a new check valve, re-glued the discharge.",
        ),
        test=(
            "Filled the pit with a hose, pump kicks on at {inch} inches and empties it.",
            "Tested several cycles, pumping out normally.",
        ),
        summary=(
            "Failed sump pump replaced with a new 1/3 HP Zoeller and check valve; it cycles "
            "normally now.",
            "Seized sump pump swapped out and the pit is draining properly again.",
        ),
    ),
    # ----- Electrical -----
    Scenario(
        trade="electrical",
        key="gfci_moisture",
        slots={"mohm": number(0.1, 0.9, 2)},
        symptom=("kitchen outlets keep tripping", "garage GFCI trips every time it rains"),
        diagnosis=(
            "Traced the trip to the outdoor receptacle on the same circuit; box full of water, "
            "insulation {mohm} MΩ to ground.",
            "Outdoor receptacle downstream of the GFCI is corroded and wet.",
        ),
        action=(
            "Replaced it with a weather-resistant GFCI and an in-use bubble cover.",
            "Installed a new WR GFCI, sealed the box and added an in-use cover.",
        ),
        test=(
            "Tested trip and reset, no nuisance tripping with the hose running on it.",
            "GFCI holds, checked with a plug-in tester.",
        ),
        summary=(
            "Nuisance GFCI tripping was caused by a wet outdoor receptacle; replaced with a "
            "weatherproof GFCI and in-use cover.",
            "Water in the outdoor outlet was tripping the GFCI, new WR GFCI and cover installed.",
        ),
    ),
    Scenario(
        trade="electrical",
        key="backstab",
        slots={"volts": number(119, 123)},
        symptom=(
            "half the outlets in the living room dead",
            "several outlets stopped working with no tripped breaker",
        ),
        diagnosis=(
            "Found a burned backstab connection at the first receptacle on the run, neutral open.",
            "Loose backstabbed neutral at the living room receptacle feeding the rest.",
        ),
        action=(
            "Replaced the receptacle and moved all connections to the screw terminals.",
            "Installed a new receptacle, pigtailed and side-wired it.",
        ),
        test=(
            "All outlets on the circuit read {volts} V.",
            "Checked every outlet downstream, all live at {volts} V.",
        ),
        summary=(
            "Dead outlets caused by a burned backstab connection; receptacle replaced and wired to "
            "the screws, circuit restored.",
            "Power to the living room outlets restored by replacing a burned receptacle.",
        ),
    ),
    Scenario(
        trade="electrical",
        key="fpe_panel",
        slots={"temp": number(140, 175), "temp2": number(88, 99), "quote": number(2400, 4200)},
        symptom=("breaker buzzing in the panel", "lights dimming when the AC starts, panel warm"),
        diagnosis=(
            "Panel is a Federal Pacific Stab-Lok; the 40 A AC breaker runs hot ({temp}°F on the IR "
            "camera).",
            "Federal Pacific panel, two breakers failed to trip on test.",
        ),
        action=(
            "Tightened the AC breaker lug and labelled the panel as a safety concern.",
            "Turned off the failed breakers and made the panel safe for now.",
        ),
        test=("Breaker down to {temp2}°F after tightening.", "No buzzing after the fix."),
        summary=(
            "Faulty breakers in an old Federal Pacific panel made safe for now; the panel "
            "should be replaced.",
            "Federal Pacific panel has unsafe breakers, temporary fix done and replacement "
            "advised.",
        ),
        followups=(
            (
                "Recommended full panel replacement; quote ${quote} for a 200 A panel sent.",
                "Quote for a 200 A panel replacement (${quote}) sent.",
            ),
            (
                "Customer wants the panel replaced, booked for {day}, quote ${quote}.",
                "Panel replacement (${quote}) booked for {day}.",
            ),
        ),
    ),
    Scenario(
        trade="electrical",
        key="ev_charger",
        slots={
            "amps": number(70, 120),
            "ft": number(20, 65),
            "volts": number(238, 244),
            "kw": number(7.2, 9.6, 1),
        },
        symptom=("new EV charger install", "Level 2 charger wanted in the garage"),
        diagnosis=(
            "Load calc OK: {amps} A existing demand on a 200 A service, room for a 50 A circuit.",
            "Panel has space for a 2-pole breaker and the service is 200 A.",
        ),
        action=(
            "Ran 6 AWG copper in EMT {ft} ft to the garage, installed a 50 A breaker and a "
            "NEMA 14-50 outlet.",
            "Installed a 50 A circuit and a NEMA 14-50 receptacle, {ft} ft run.",
        ),
        test=(
            "Verified {volts} V at the receptacle; charger connected and charging at {kw} kW.",
            "Charger online, pulling {kw} kW.",
        ),
        summary=(
            "Installed a 50 A circuit and NEMA 14-50 outlet for the EV charger, which charges at "
            "{kw} kW.",
            "EV charger circuit installed ({ft} ft run) and the charger is working.",
        ),
        followups=(
            (
                "Permit pulled; inspection needs to be booked for {day}.",
                "City inspection still to be booked for {day}.",
            ),
        ),
    ),
    Scenario(
        trade="electrical",
        key="loose_neutral",
        slots={"v1": number(104, 112), "v2": number(128, 136)},
        symptom=(
            "lights flickering throughout the house",
            "lights getting brighter when the dryer runs",
        ),
        diagnosis=(
            "Voltage swinging {v1} V / {v2} V between legs; main neutral loose at the panel.",
            "Loose service neutral at the panel bus with heat discoloration.",
        ),
        action=(
            "Cleaned and torqued the neutral connection to spec and applied anti-oxidant.",
            "Re-terminated the service neutral and torqued all lugs.",
        ),
        test=("Legs now steady at 120 V / 121 V under load.", "Voltage stable under load."),
        summary=(
            "Flickering lights were caused by a loose service neutral at the panel; connection "
            "re-torqued and voltage is stable.",
            "Re-terminated a loose main neutral, which ended the voltage swings ({v1}/{v2} V).",
        ),
        followups=(
            (
                "Utility should check the drop connection too; customer to call them.",
                "Customer to have the utility check the service drop.",
            ),
        ),
    ),
    Scenario(
        trade="electrical",
        key="ceiling_fan",
        slots={"brand": pick("Hunter", "Minka", "Hampton Bay", "Casablanca")},
        symptom=(
            "ceiling fan install in the main bedroom",
            "light fixture to be swapped for a fan",
        ),
        diagnosis=(
            "Existing box is not fan-rated.",
            "Old light box is plastic and not rated for a fan.",
        ),
        action=(
            "Installed a fan-rated brace box and hung the customer's {brand} fan.",
            "Replaced the box with a fan-rated brace and installed the {brand} fan and remote.",
        ),
        test=(
            "Fan runs on all speeds with no wobble, light works.",
            "Balanced the blades, runs quiet on all speeds.",
        ),
        summary=(
            "Customer's {brand} ceiling fan installed on a new fan-rated box; working on all "
            "speeds.",
            "Ceiling fan hung with a proper fan-rated brace box.",
        ),
    ),
    Scenario(
        trade="electrical",
        key="smoke_detectors",
        slots={
            "year": number(2009, 2014),
            "n": pick("4", "5", "6", "7"),
            "pn": part_number("electrical"),
        },
        symptom=("smoke detectors chirping", "hardwired smoke alarms beeping at random"),
        diagnosis=(
            "Detectors are dated {year}, past their 10-year life.",
            "All {n} alarms are over 10 years old ({year}).",
        ),
        action=(
            "Replaced {n} hardwired smoke/CO combo alarms (Kidde, P/N {pn}) with new pigtails.",
            "Swapped all {n} detectors for new interconnected combo units.",
        ),
        test=(
            "Tested the interconnect, all units sound together.",
            "Pressed test on each one, interconnect working.",
        ),
        summary=(
            "Replaced all {n} expired smoke alarms with interconnected smoke/CO units.",
            "Old chirping detectors from {year} swapped for {n} new combo alarms.",
        ),
    ),
    Scenario(
        trade="electrical",
        key="ac_breaker",
        slots={
            "amps": number(18, 24, 1),
            "amps2": number(14, 19, 1),
            "pn": part_number("electrical"),
        },
        symptom=("AC breaker trips after a few minutes", "outside unit keeps losing power"),
        diagnosis=(
            "Double-pole 30 A breaker for the condenser runs hot and trips at {amps} A.",
            "Breaker feeding the AC is weak and tripping under normal load.",
        ),
        action=(
            "Replaced the 30 A double-pole breaker (P/N {pn}).",
            "Installed a new 2-pole 30 A breaker and re-torqued the conductors.",
        ),
        test=(
            "AC ran 30 min drawing {amps2} A with no trip.",
            "No trips after running the AC for half an hour.",
        ),
        summary=(
            "Failing 30 A AC breaker replaced; the condenser runs without tripping.",
            "Weak double-pole breaker feeding the AC replaced, no more trips.",
        ),
    ),
    # ----- Appliance -----
    Scenario(
        trade="appliance",
        key="dishwasher_drain",
        slots={
            "equip": pick(
                "Bosch dishwasher",
                "Whirlpool dishwasher",
                "KitchenAid dishwasher",
                "Samsung dishwasher",
            ),
            "pn": part_number("appliance"),
        },
        symptom=(
            "dishwasher not draining with water left in the tub",
            "dishwasher showing error E24 and not draining",
        ),
        diagnosis=(
            "Drain pump impeller jammed by broken glass; pump motor hums but does not turn.",
            "Pump on the {equip} blocked with glass and the impeller is cracked.",
        ),
        action=(
            "Cleared the sump and replaced the drain pump (P/N {pn}).",
            "Installed a new drain pump and cleaned the filter assembly.",
        ),
        test=(
            "Ran a rinse cycle, drains fully in under 2 min.",
            "Test cycle completed with no error codes.",
        ),
        summary=(
            "The {equip} was not draining because of a jammed drain pump; pump replaced and it "
            "drains normally.",
            "Replaced the drain pump that broken glass had jammed on the {equip}.",
        ),
    ),
    Scenario(
        trade="appliance",
        key="washer_belt",
        slots={
            "equip": pick(
                "LG top-load washer",
                "Whirlpool top-load washer",
                "Maytag washer",
                "Speed Queen washer",
            ),
            "pn": part_number("appliance"),
        },
        symptom=("washer not spinning and clothes soaking wet", "washer drum not turning"),
        diagnosis=(
            "Drive belt worn and slipping, the tub barely turns.",
            "Belt on the {equip} glazed and cracked, motor spins without turning the drum.",
        ),
        action=(
            "Replaced the drive belt (P/N {pn}) and checked the tub bearings.",
            "Installed a new belt and adjusted the tension.",
        ),
        test=(
            "Spin cycle reaches full speed, clothes come out damp-dry.",
            "Ran a drain and spin, full speed.",
        ),
        summary=(
            "The {equip} would not spin because of a worn drive belt; belt replaced and spin works "
            "again.",
            "New drive belt fitted on the {equip}, spin cycle restored.",
        ),
    ),
    Scenario(
        trade="appliance",
        key="dryer_no_heat",
        slots={
            "equip": pick("Whirlpool dryer", "Samsung electric dryer", "Maytag dryer", "GE dryer"),
            "wc": number(0.9, 1.6, 1),
            "ft": number(12, 30),
            "temp": number(125, 140),
            "pn": part_number("appliance"),
        },
        symptom=("dryer running but no heat", "clothes still damp after 2 cycles"),
        diagnosis=(
            "Thermal fuse open; vent line heavily restricted with lint, {wc} inches WC.",
            "Thermal fuse on the {equip} blown and the vent is packed with lint.",
        ),
        action=(
            "Replaced the thermal fuse (P/N {pn}) and cleaned {ft} ft of vent line.",
            "New thermal fuse installed, vent cleaned out to the exterior hood.",
        ),
        test=(
            "Exhaust temp {temp}°F at the hood, drying normally.",
            "Ran a timed dry, heating fine.",
        ),
        summary=(
            "Dryer had no heat because a lint-clogged vent blew the thermal fuse; fuse replaced "
            "and vent cleaned.",
            "Replaced the thermal fuse and cleared the clogged vent on the {equip}, heating again.",
        ),
        followups=(
            (
                "Vent run is too long with 4 elbows; recommended rerouting, quote to follow.",
                "Vent reroute recommended, quote to follow.",
            ),
            (
                "Advised yearly vent cleaning to avoid a repeat.",
                "Customer advised to have the vent cleaned yearly.",
            ),
        ),
    ),
    Scenario(
        trade="appliance",
        key="fridge_evap_fan",
        slots={
            "equip": FRIDGES,
            "temp": number(46, 55),
            "temp2": number(37, 41),
            "pn": part_number("appliance"),
        },
        symptom=(
            "fridge warm while the freezer is still cold",
            "refrigerator section at 50 degrees",
        ),
        diagnosis=(
            "Evaporator fan motor not running; fresh food section at {temp}°F.",
            "Evap fan on the {equip} seized and the coil is frosted over.",
        ),
        action=(
            "Defrosted the coil and replaced the evaporator fan motor (P/N {pn}).",
            "Installed a new evap fan motor after a manual defrost.",
        ),
        test=("Fridge down to {temp2}°F after an hour.", "Airflow restored and temps dropping."),
        summary=(
            "Fridge was warming because the evaporator fan motor failed; coil defrosted and fan "
            "replaced, now cooling.",
            "Seized evaporator fan replaced on the {equip}, fridge cooling again.",
        ),
    ),
    Scenario(
        trade="appliance",
        key="oven_bake",
        slots={
            "equip": pick(
                "GE electric range", "Frigidaire range", "Whirlpool wall oven", "Bosch oven"
            ),
            "ohms": number(18, 30),
            "mins": number(11, 16),
            "pn": part_number("appliance"),
        },
        symptom=("oven not heating while the broiler works", "oven taking forever to preheat"),
        diagnosis=(
            "Bake element open, visible blister on the sheath.",
            "Bake element reads open on the meter; broil element fine at {ohms} ohms.",
        ),
        action=(
            "Replaced the bake element (P/N {pn}).",
            "Installed a new bake element and checked the wiring.",
        ),
        test=(
            "Preheated to 350°F in {mins} min, verified with a thermometer.",
            "Holding 350°F within 5 degrees.",
        ),
        summary=(
            "Oven was not heating due to a burned-out bake element; element replaced and the oven "
            "heats properly.",
            "New bake element installed on the {equip}, oven heating properly.",
        ),
    ),
    Scenario(
        trade="appliance",
        key="ice_maker",
        slots={"equip": FRIDGES, "psi": number(40, 70), "pn": part_number("appliance")},
        symptom=("ice maker not making ice", "no water or ice from the door"),
        diagnosis=(
            "Water inlet valve not opening, coil reads open; supply pressure OK at {psi} psi.",
            "Inlet valve on the {equip} failed, no water reaching the ice maker.",
        ),
        action=(
            "Replaced the water inlet valve (P/N {pn}).",
            "Installed a new inlet valve and cleared ice from the fill tube.",
        ),
        test=("Dispensed water, ice maker filled and harvested.", "Water and ice working."),
        summary=(
            "No ice or water because the inlet valve failed; valve replaced and the dispenser "
            "works "
            "again.",
            "The {equip} got a new water inlet valve and the ice maker is back in service.",
        ),
    ),
    Scenario(
        trade="appliance",
        key="microwave_magnetron",
        slots={
            "equip": pick(
                "Whirlpool over-the-range microwave",
                "GE Profile microwave",
                "Samsung OTR microwave",
            ),
            "age": number(8, 14),
            "quote": number(280, 420),
        },
        symptom=("microwave running but not heating", "microwave buzzing with no heat"),
        diagnosis=(
            "Magnetron tested bad; the {equip} is {age} years old.",
            "Magnetron failed the continuity test, diode fine.",
        ),
        action=(
            "Did not repair: parts and labor would be about ${quote}, more than half the cost of "
            "a new unit.",
            "Quoted the magnetron at ${quote} but advised against it given the age.",
        ),
        test=("Unplugged the unit and tagged it do not use.", "Left the unit unplugged."),
        summary=(
            "Microwave not heating because the magnetron failed; repair (${quote}) is not worth it "
            "on a unit this old.",
            "Dead magnetron on the {age}-year-old {equip}, replacement advised instead of repair.",
        ),
        followups=(
            (
                "Customer will buy a new microwave and we can install it {day}.",
                "Customer is buying a new microwave, install {day}.",
            ),
        ),
    ),
    Scenario(
        trade="appliance",
        key="washer_door_boot",
        slots={
            "equip": pick("LG front loader", "Samsung front-load washer", "Electrolux washer"),
            "cm": number(3, 9),
            "pn": part_number("appliance"),
        },
        symptom=(
            "water leaking from the front of the washer",
            "puddle under the front loader after washes",
        ),
        diagnosis=(
            "Door boot torn at the bottom fold, about a {cm} cm tear.",
            "Door gasket on the {equip} has a tear and mildew buildup.",
        ),
        action=(
            "Replaced the door boot (P/N {pn}) and cleaned the drain filter.",
            "Installed a new door gasket and clamps.",
        ),
        test=("Ran a rinse and spin, no leaks.", "Test wash completed, dry underneath."),
        summary=(
            "Front loader was leaking from a torn door boot; boot replaced and no further leaks.",
            "Torn door gasket on the {equip} replaced, leak fixed.",
        ),
    ),
)

GENERIC_FOLLOWUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "hvac": (
        (
            "Coil is very dirty; recommended a maintenance plan, customer will think about it.",
            "Maintenance plan suggested because of the dirty coil.",
        ),
        (
            "System is {age} years old on R-22; will send a quote for a new {tons}-ton system.",
            "Customer wants a quote to replace the {age}-year-old R-22 system.",
        ),
        (
            "Need to return {day} to replace the blower wheel, part ordered (ETA {eta} days).",
            "Return visit {day} to fit the ordered blower wheel.",
        ),
        (
            "Customer asked about the ductwork; booked our comfort advisor for {day}.",
            "Comfort advisor booked for {day} to look at the ductwork.",
        ),
    ),
    "plumbing": (
        (
            "Main shutoff valve is seized; quoted ${small} to replace it on a return visit.",
            "Seized main shutoff quoted separately (${small}).",
        ),
        (
            "Need to come back {day} to replace the corroded hose bibs, parts ordered.",
            "Return {day} to swap the corroded hose bibs.",
        ),
        (
            "Recommended an expansion tank since pressure spikes; customer to decide.",
            "Expansion tank recommended, customer deciding.",
        ),
    ),
    "electrical": (
        (
            "Found aluminum branch wiring in the garage; recommended a full evaluation, quote to "
            "follow.",
            "Aluminum branch wiring found in the garage, evaluation quote to follow.",
        ),
        (
            "Panel directory is mostly blank; coming back {day} to trace and label circuits.",
            "Return visit {day} to label the panel.",
        ),
        (
            "No surge protection on the panel; quoted ${small} for a whole-house surge protector.",
            "Whole-house surge protector quoted at ${small}.",
        ),
    ),
    "appliance": (
        (
            "Control board also shows corrosion; ordered a board (ETA {eta} days) and will return.",
            "Control board ordered, return visit when it arrives ({eta} days).",
        ),
        (
            "Unit is {age} years old; told the customer replacement may make more sense next time.",
            "Customer warned the {age}-year-old unit is near the end of its life.",
        ),
        (
            "Customer also wants the dryer looked at; booked for {day}.",
            "Second visit booked {day} for the dryer.",
        ),
    ),
}
NO_FOLLOWUP = (
    "No further work needed, job complete.",
    "Customer satisfied, job closed.",
    "Nothing else needed today.",
    "Job complete.",
)
ARRIVALS = (
    "Arrived on site at {t_arr}, {cust} met me at the door.",
    "On site {t_arr} after calling ahead.",
    "Got to {street} at {t_arr}, about {late} min late due to traffic.",
    "Arrived {t_arr}, gate code worked and {cust} was home.",
    "Checked in at {t_arr}, property manager gave access.",
    "Arrived {t_arr} for the {window} window.",
)
COMPLAINTS = (
    "Customer reports {symptom}.",
    "Call was for {symptom}.",
    "Dispatch notes said {symptom}.",
    "Per {cust}: {symptom} since {since}.",
    "{cust} called in about {symptom}.",
)
INTERACTIONS = (
    ("Went over the repair with {cust}, who approved the ${amount} total before I started.", ""),
    ("{cust} paid ${amount} by card on site.", "Paid ${amount} on site."),
    (
        "Tenant let me in; invoice for ${amount} emailed to the property manager.",
        "Invoice (${amount}) sent to the property manager.",
    ),
    ("Showed {cust} the failed part and explained what happened.", ""),
    ("{cust} asked about our maintenance plan, left a brochure.", ""),
    ("{cust} was unhappy about the late arrival, so I waived the trip fee.", "Trip fee waived."),
)
FILLER_NOTES = (
    "Parked in the driveway and laid drop cloths.",
    "Dog on premises, owner kept it in the back room.",
    "Took before and after photos and attached them to the job.",
    "Wore shoe covers and cleaned up the work area.",
    "Checked in with dispatch at {t_mid}.",
    "Tight access through a closet hatch.",
    "Customer's driveway was blocked, parked on the street.",
)
DEPARTURES = ("Left site at {t_out}.", "Total time on site {mins} min.", "Departed {t_out}.")
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
