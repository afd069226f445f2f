"""Classify a patient's SMS reply to our missed-call text into an :class:`Intent`.

Our first text offers a menu: 1/BOOK, 2/BILLING, 3/REFILL, 4/URGENT (Spanish: CITA,
FACTURA, RECETA, URGENTE, same digits) and STOP to opt out. Patients answer with a
keyword, a digit, or in their own words, in English or Spanish; on-call clinicians
answer urgent pages with "ACK <code>". :func:`classify` turns any of these into a
:class:`Classification` (intent, language, audit evidence, ack code).

Safety rule: when a message could be urgent, it is urgent. A missed emergency is the
worst failure; an over-triaged refill costs a clinician a minute.

Precedence (the first rule that fires wins)
-------------------------------------------
1. Red flag: emergency warning signs anywhere in the text -> URGENT, whatever else the
   message says ("BOOK ... chest pain"), including the words "emergency", "911" and
   the 🆘/🚑 emoji. Negations do not cancel a red flag ("no chest pain" is URGENT): we
   cannot parse negation reliably and a human reading one false alarm is cheap.
   Mentions of a past event ("I had a stroke last year") escalate too.
2. Carrier keyword, exact whole message (case, punctuation, emoji and politeness such
   as "Stop. Thank you" ignored) -> STOP / START / HELP. Never typo-matched: opt-outs
   must be exact. A bare carrier keyword cannot contain a red-flag phrase, so it is
   checked before the phrases in code (after the emoji: "HELP 🚑" is not bare); that
   guarantees a bare "STOP" is never URGENT. Also in this step, after the red flags:
   a message that *starts* with an opt-out verb and is about our messages ("stop
   texting me", "please stop calling", "no me manden mensajes") -> STOP, evidence
   "opt_out_phrase:...". "I can't stop coughing" is not one.
3. ACK from on-call staff: "ACK", "ack 4821", "Ack #4821" -> ACK (code 3-8 letters or
   digits, upper-cased; an invalid code means "not an ACK").
4. Menu digit: the whole reply is one digit 1-4 ("1.", "#2", "3)", "4️⃣", "option 2",
   "dos"). Digits inside sentences, times, dates, amounts are never menu choices.
5. Keyword or typo: an exact menu keyword anywhere ("yes billing", "BOOK please 🙏").
   URGENT/URGENTE anywhere beats the other keywords. Otherwise the first keyword
   mentioned wins ("refill and billing" -> REFILL). Typos (one insert, delete,
   substitute or adjacent swap) count only when the typed word has 4+ letters, is the
   whole reply or nearly so ("biling please"), and is not a common word one edit away
   ("look", "took", "filling", "city", "fractura"); "bok" (3 letters) is not matched.
   Typos of URGENT/URGENTE are the exception: they count anywhere (safety).
6. Synonym phrase: "reschedule", "question about my bill", "my meds ran out", ...
   The first phrase mentioned wins; generic verbs ("cancel", "come in", "visit") count
   only when no specific phrase matched, so "cancel my prescription" is REFILL.
7. Otherwise UNKNOWN ("ok", "thanks", "who is this?", emoji, empty).

Language: "es" when the reply has more Spanish marker words (or Spanish accents and
punctuation) than English ones, "en" when the reverse; when the text does not tell
(a digit, "STOP", "ok"), the conversation's ``locale`` ("es", "es-MX", ...) decides,
and "en" when there is none.

Pure standard library, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from recovery.domain.spelling import one_edit_apart
from recovery.domain.triage import Assessment, assess

__all__ = ["Classification", "Intent", "classify"]


# (str, Enum) as the API was specified: members compare equal to their values and
# serialise as plain strings; StrEnum would also change str(Intent.BOOK).
class Intent(str, Enum):  # noqa: UP042
    BOOK = "book"
    BILLING = "billing"
    REFILL = "refill"
    URGENT = "urgent"
    CLINICAL = "clinical"  # a symptom, an illness or an injury, and no red flag
    STOP = "stop"
    START = "start"
    HELP = "help"
    ACK = "ack"
    UNKNOWN = "unknown"


def evidence_kind(evidence: str) -> str:
    """What kind of match it was ("red_flag", "keyword"), without the patient's words that
    matched: what a log line may say."""
    return evidence.split(":", 1)[0]


@dataclass(frozen=True)
class Classification:
    intent: Intent
    language: str  # "en" or "es": the language the patient wrote in
    evidence: str  # what matched, for audit: "keyword:BOOK", "red_flag:chest pain", ...
    ack_code: str | None = None  # "ACK 4821" -> "4821"
    # The symptoms, illnesses and injuries named ("pain", "fever", ...), whatever the
    # intent: a booking request that mentions one also gets a nurse's callback.
    concerns: tuple[str, ...] = ()


# Emoji that say "emergency" on their own: 🆘 SOS, 🚑 ambulance.
_RED_FLAG_EMOJI: dict[str, str] = {"\U0001f198": "sos emoji", "\U0001f691": "ambulance emoji"}

# --------------------------------------------------------------------------------------
# Carrier keywords (CTIA Messaging Principles; the US carriers' and Twilio's default
# opt-out/opt-in/help keywords, plus REVOKE and OPTOUT named in the FCC's 2024 TCPA
# revocation-of-consent order, plus Spanish PARAR/ALTO/BAJA/AYUDA/SI). Whole message
# only. Phrase -> (intent, canonical keyword for the evidence string).
# --------------------------------------------------------------------------------------
_CARRIER_KEYWORDS: dict[str, tuple[Intent, str]] = {
    "stop": (Intent.STOP, "STOP"),
    "stopall": (Intent.STOP, "STOPALL"),
    "stop all": (Intent.STOP, "STOPALL"),
    "unsubscribe": (Intent.STOP, "UNSUBSCRIBE"),
    "cancel": (Intent.STOP, "CANCEL"),
    "end": (Intent.STOP, "END"),
    "quit": (Intent.STOP, "QUIT"),
    "revoke": (Intent.STOP, "REVOKE"),
    "optout": (Intent.STOP, "OPTOUT"),
    "opt out": (Intent.STOP, "OPTOUT"),  # also "opt-out": hyphens become spaces
    "parar": (Intent.STOP, "PARAR"),
    "alto": (Intent.STOP, "ALTO"),
    "baja": (Intent.STOP, "BAJA"),
    "start": (Intent.START, "START"),
    "unstop": (Intent.START, "UNSTOP"),
    "yes": (Intent.START, "YES"),
    "si": (Intent.START, "SI"),  # "sí" after accents are stripped
    "help": (Intent.HELP, "HELP"),
    "info": (Intent.HELP, "INFO"),
    "ayuda": (Intent.HELP, "AYUDA"),
}

# Words a patient may put around a carrier keyword without changing it: "Stop. Thank
# you", "stop please", "ok stop", "ayuda por favor".
_CARRIER_TRAILING = frozenset(
    {"please", "pls", "plz", "thanks", "thank", "you", "thx", "ty", "now", "por", "favor"}
    | {"gracias"}
)
_CARRIER_LEADING = frozenset({"please", "pls", "plz", "ok", "okay", "por", "favor"})

# Opt-out in spirit, not a carrier keyword: the message *starts* with an opt-out verb
# and is about our messages or calls. Checked after the red flags ("stop texting me, I
# want to die" is URGENT). "I can't stop coughing" does not start with one.
_OPT_OUT_LEAD = r"^(?:(?:please|pls|plz|ok|okay|hey|hi|por favor) )*"
_MESSAGING = r"(?:text\w*|messag\w*|sms|call\w*|contact\w*|send\w*|bother\w*|spam\w*)"
_OPT_OUT_PHRASES: tuple[str, ...] = (
    rf"(?:stop|quit|cease|end)(?: \S+){{0,2}} {_MESSAGING}",
    r"stop it",
    r"(?:unsubscribe|opt ?out|remove me|take me off)",
    r"(?:don'?t|do not|never) (?:text|message|call|contact|sms)\w* me",
    r"no more (?:text|messag|call|sms)\w*",
    r"cancel\w*(?: \S+){0,2} (?:text\w*|messag\w*|sms|subscription|suscripcion)",
    r"(?:ya )?no me (?:\S+ )?(?:manden|mande|envien|envie|escriban|escriba|llamen|llame"
    r"|contacten|molesten|moleste)",
    r"(?:dejen|deja|dejar) de (?:mandar|enviar|escribir|llamar|molestar)\w*",
    r"(?:quiero )?(?:dar|darme|dame|denme) de baja",
    r"(?:parar|alto|basta)(?: \S+){0,2} (?:mensajes|textos|llamadas)",
)

# --------------------------------------------------------------------------------------
# ACK from on-call clinicians.
# --------------------------------------------------------------------------------------
_ACK_WORDS = frozenset({"ack", "ackd", "acked", "acknowledge", "acknowledged"})
_ACK_CODE = re.compile(r"^[a-z0-9]{3,8}$")
# What a busy clinician may add after the code: "ACK 4821 on it", "ack, will call".
_ACK_TRAILING = _CARRIER_TRAILING | {"ok", "okay", "got", "it", "on", "will", "call", "calling"}

# --------------------------------------------------------------------------------------
# Menu digits.
# --------------------------------------------------------------------------------------
_MENU_DIGITS: dict[str, Intent] = {
    "1": Intent.BOOK,
    "2": Intent.BILLING,
    "3": Intent.REFILL,
    "4": Intent.URGENT,
}
_NUMBER_WORDS: dict[str, str] = {
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "uno": "1",
    "dos": "2",
    "tres": "3",
    "cuatro": "4",
}
_ES_NUMBER_WORDS = frozenset({"uno", "dos", "tres", "cuatro"})
# Words allowed around the digit: "option 2", "#3 please", "si 1". Not "at", "pm", ...
# so "at 3" and "3 pm" are not menu choices. Deliberately not "no": "no 4" is unclear.
_POLITE = frozenset(
    {"please", "pls", "plz", "thanks", "thank", "you", "thx", "ty", "ok", "okay", "k"}
    | {"yes", "yeah", "yep", "yup", "hi", "hello", "hey", "por", "favor", "gracias"}
    | {"si", "hola", "oh", "um", "uh"}
)
_DIGIT_FILLERS = (
    _POLITE
    | {"option", "opcion", "number", "numero", "num", "press", "pressing", "choice"}
    | {"choose", "pick", "select", "i", "id", "would", "like", "want", "take"}
)
# A menu digit next to these is an amount, time, date or ratio, not a choice ("$4").
_NOT_A_MENU_DIGIT = re.compile(r"[$€£%:/]")

# --------------------------------------------------------------------------------------
# Menu keywords, exact (any case) -> (intent, canonical keyword).
# --------------------------------------------------------------------------------------
_KEYWORDS: dict[str, tuple[Intent, str]] = {
    "book": (Intent.BOOK, "BOOK"),
    "billing": (Intent.BILLING, "BILLING"),
    "refill": (Intent.REFILL, "REFILL"),
    "urgent": (Intent.URGENT, "URGENT"),
    "cita": (Intent.BOOK, "CITA"),
    "factura": (Intent.BILLING, "FACTURA"),
    "receta": (Intent.REFILL, "RECETA"),
    "urgente": (Intent.URGENT, "URGENTE"),
}
_URGENT_KEYWORDS = ("urgent", "urgente")
_ES_KEYWORDS = frozenset({"cita", "factura", "receta", "urgente"})

# Typos: the reply is one word (plus these) at most four words long: "biling please",
# "necesito una sita".
_TYPO_FILLERS = (
    _POLITE
    | {"i", "need", "want", "a", "an", "my", "the", "to", "for"}
    | {"necesito", "quiero", "una", "un", "mi", "la", "el", "para"}
)
_TYPO_MAX_WORDS = 4
# A 3-letter reply ("bok", "boo", "cit") is one edit from too many words to guess at.
_TYPO_MIN_LETTERS = 4
# Real words one edit from a keyword, found by running Debian's English and Spanish
# word lists (wamerican, wspanish) through one_edit_apart: a reply of just "look" or
# "filling" is not a keyword, and "fractura" (a fracture) is not FACTURA.
_TYPO_STOPLIST = frozenset(
    {"boob", "boom", "boon", "boor", "boos", "boot", "bork", "brook", "cook", "hook"}
    | {"kook", "look", "nook", "rook", "took", "bock", "bonk"}
    | {"balling", "belling", "bilking", "bulling", "filling", "killing", "milling"}
    | {"pilling", "tilling", "willing"}
    | {"refile"}
    | {"cite", "city", "nita", "pita", "rita", "cata", "ceta", "chita", "cima", "cina"}
    | {"cinta", "cito", "cota", "cuita", "dita", "mita", "tita", "lita", "bita", "hita"}
    | {"fractura", "fartura", "jactura"}
    | {"recta", "recata", "recela"}
    | {"argent", "argente", "surgente", "turgente", "urente"}
)

# --------------------------------------------------------------------------------------
# Synonym phrases: (intent, label for the evidence, pattern, specific?). A generic
# entry (specific=False: "cancel", "come in", "visit") counts only when no specific
# one matched, so "cancel my prescription" is REFILL and "cancel for tomorrow" is BOOK.
# --------------------------------------------------------------------------------------
_Synonym = tuple[Intent, str, str, bool]

_SYNONYMS_EN: tuple[_Synonym, ...] = (
    # BOOK: booking, rescheduling and cancelling an appointment.
    (Intent.BOOK, "reschedule", r"re ?schedul\w*", True),
    (Intent.BOOK, "schedule", r"schedul\w*", True),
    (
        Intent.BOOK,
        "appointment",
        r"appointments?|apointments?|appoinments?|appointmen|appts?|apts?",
        True,
    ),
    (Intent.BOOK, "booking", r"book(?:ed|ing|s)", True),
    (
        Intent.BOOK,
        "see the doctor",
        r"(?:see|seeing) (?:the |a |my )?(?:doctor|doc|dr|provider|nurse|physician|pediatrician)",
        True,
    ),
    (Intent.BOOK, "availability", r"availab\w*|openings?|time slots?|slots?", True),
    (Intent.BOOK, "new patient", r"new patients?", True),
    (
        Intent.BOOK,
        "anything open",
        r"(?:have|got) anything (?:today|tomorrow|this week|open|available|sooner)",
        True,
    ),
    (
        Intent.BOOK,
        "shots",
        r"(?:get|getting|need|needs|schedule|book|for|due for) (?:my |his |her |the |a |their )?"
        r"(?:\S+ )?(?:shots?|vaccin\w*|immuniz\w*|boosters?)",
        False,
    ),
    (Intent.BOOK, "cancel", r"cancel(?:s|ed|led|ing|ling|lation|lations)?", False),
    (Intent.BOOK, "move", r"move (?:my|it|the)|push (?:it|my) back", False),
    (Intent.BOOK, "change the time", r"change (?:my|the) (?:time|day|date)", False),
    (
        Intent.BOOK,
        "come in",
        r"come in|get in(?! touch)|be seen|(?:squeeze|fit) (?:me|us|him|her|them) in",
        False,
    ),
    (
        Intent.BOOK,
        "visit",
        r"visits?|follow ?ups?|check ?ups?|physicals?|annual (?:exam|visit)|well (?:child|baby)",
        False,
    ),
    # BILLING: bills, charges, payments, insurance.
    (Intent.BILLING, "bill", r"bills?|billed", True),
    (Intent.BILLING, "charge", r"(?<!in )(?:over|double )?charg(?:e|es|ed|ing)", True),
    (Intent.BILLING, "invoice", r"invoices?|statements?|receipts?|itemized", True),
    (Intent.BILLING, "payment", r"payments?|pay|paying|paid|payed", True),
    (Intent.BILLING, "balance", r"balances?|owe|owed|owing|debt|collections?", True),
    (Intent.BILLING, "copay", r"co ?pays?|deductibles?|coinsurance|out of pocket", True),
    (
        Intent.BILLING,
        "insurance",
        r"insurance\w*|insurer|claims?|eob|explanation of benefits|medicaid|medicare|coverage"
        r"|covered(?! in\b)",  # not "covered in hives"
        True,
    ),
    (Intent.BILLING, "refund", r"refunds?|reimburs\w*", True),
    (Intent.BILLING, "cost", r"costs?|price|prices|pricing|fees?", True),
    (Intent.BILLING, "card", r"(?:credit|debit) card|card on file", True),
    (Intent.BILLING, "how much", r"how much", False),  # "how much medicine do I take"
    # REFILL: prescriptions, medications, pharmacies.
    (Intent.REFILL, "refills", r"refill\w+|refil|refils|re fills?", True),
    (Intent.REFILL, "prescription", r"prescri\w*|perscri\w*|presciption\w*|rx|scripts?", True),
    (
        Intent.REFILL,
        "medication",
        r"meds|medications?|medicines?|pills?|tablets?|inhalers?|insulin",
        True,
    ),
    (Intent.REFILL, "pharmacy", r"pharmac\w*|cvs|walgreens|rite aid", True),
    (Intent.REFILL, "ran out", r"ran out|run out|running out|running low|out of my", True),
    (Intent.REFILL, "renew", r"renew\w*|call (?:it )?in|called in", True),
)

_SYNONYMS_ES: tuple[_Synonym, ...] = (
    (Intent.BOOK, "consulta", r"consultas?|citas", True),
    (Intent.BOOK, "agendar", r"agend\w*|reprogram\w*", True),
    (
        Intent.BOOK,
        "ver al doctor",
        r"ver (?:al|a la|a el|a mi) (?:doctor|doctora|medico|medica)",
        True,
    ),
    (Intent.BOOK, "disponible", r"disponibles?", True),
    (Intent.BOOK, "cancelar", r"cancel(?:ar|o|e|aron|ada|ado|acion)", False),
    (Intent.BOOK, "cambiar", r"cambiar (?:la|mi) (?:hora|fecha|dia)", False),
    (Intent.BOOK, "chequeo", r"chequeos?|revision|examen fisico|turnos?", False),
    (Intent.BOOK, "vacunas", r"vacunas?|vacunar\w*", False),
    (Intent.BILLING, "facturas", r"facturas|facturacion|facturar", True),
    (Intent.BILLING, "cobro", r"cobr\w*", True),
    (Intent.BILLING, "pago", r"pagos?|pagar|pague|pagado|tarjeta", True),
    (Intent.BILLING, "cuenta", r"estado de cuenta|mi cuenta|saldo|deuda", True),
    (Intent.BILLING, "cuanto", r"cuanto (?:debo|cuesta|cobran)|cuesta|debo (?:dinero|pagar)", True),
    (
        Intent.BILLING,
        "seguro",
        r"(?:mi|el|su|del) seguro|aseguranza|aseguradora|seguro medico",
        True,
    ),
    (Intent.BILLING, "copago", r"copagos?|deducibles?|reembols\w*|costos?|precios?", True),
    (Intent.REFILL, "recetas", r"recetas|recetar", True),
    (
        Intent.REFILL,
        "medicina",
        r"medicinas?|medicamentos?|pastillas?|pildoras?|inhalador\w*|insulina",
        True,
    ),
    (Intent.REFILL, "farmacia", r"farmacias?", True),
    (Intent.REFILL, "resurtido", r"resurt\w*|surtir|rellen\w*|renov\w*", True),
    (
        Intent.REFILL,
        "se me acabo",
        r"se me (?:acab|termin)\w*|me quede sin|ya no tengo (?:mi|mis|la|las)",
        True,
    ),
)

# --------------------------------------------------------------------------------------
# Language markers: common words that only one of the two languages uses.
# --------------------------------------------------------------------------------------
_ES_WORDS = frozenset(
    {"necesito", "quiero", "tengo", "tiene", "una", "uno", "un", "mi", "mis", "el", "la"}
    | {"los", "las", "de", "del", "por", "favor", "gracias", "hola", "buenos", "buenas"}
    | {"dias", "tardes", "noches", "que", "como", "cuando", "donde", "cual", "para", "con"}
    | {"sin", "sobre", "pregunta", "esta", "estoy", "es", "muy", "mas", "pero", "tu", "su"}
    | {"se", "le", "lo", "nos", "puedo", "puede", "pueden", "hacer", "cambiar", "cancelar"}
    | {"cita", "factura", "receta", "urgente", "medicina", "pecho", "duele", "dolor"}
    | {"respirar", "acabo", "termino", "si", "ayuda", "alto", "baja", "parar", "llamar"}
    | {"mensajes", "ya", "hoy", "manana", "quien", "senor", "senora", "hijo", "hija"}
)
_EN_WORDS = frozenset(
    {"i", "im", "need", "want", "my", "the", "to", "an", "and", "is", "are", "of", "for"}
    | {"on", "in", "it", "this", "that", "please", "thanks", "thank", "you", "can", "could"}
    | {"would", "have", "has", "get", "got", "with", "about", "what", "when", "why", "how"}
    | {"appointment", "appt", "bill", "billing", "book", "refill", "urgent", "yes", "hi"}
    | {"hello", "hey", "call", "calling", "text", "just", "also", "not", "dont", "cant"}
    | {"out", "ran", "who", "question", "prescription", "meds", "pharmacy", "your"}
    | {"today", "tomorrow", "son", "daughter", "help", "was", "do", "there"}
)
# Spanish-only characters in the raw text (accented vowels, ñ, opening ¿ and ¡).
_ES_CHARS = frozenset("áéíóúñü¿¡ÁÉÍÓÚÑÜ")

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})


# --------------------------------------------------------------------------------------
# Compiled tables.
# --------------------------------------------------------------------------------------
def _words(pattern: str) -> re.Pattern[str]:
    """Compile a pattern so that it matches whole words only."""
    return re.compile(rf"\b(?:{pattern})\b")


_OPT_OUT_RES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(rf"{_OPT_OUT_LEAD}((?:{p}))\b") for p in _OPT_OUT_PHRASES
)
_SYNONYM_RES: tuple[tuple[Intent, str, str, re.Pattern[str], bool], ...] = tuple(
    (intent, label, language, _words(pattern), specific)
    for language, table in (("en", _SYNONYMS_EN), ("es", _SYNONYMS_ES))
    for intent, label, pattern, specific in table
)


class _Message(NamedTuple):
    flat: str  # folded, only [a-z0-9'] words separated by single spaces
    tokens: tuple[str, ...]  # words of `flat` without apostrophes
    folded: str  # folded, punctuation kept (for "$4", "3:00")
    spanish_chars: bool  # the raw text has á, ñ, ¿, ...
    triage: Assessment  # clinical concepts named and the red-flag rule they fire


class _Match(NamedTuple):
    intent: Intent
    evidence: str
    ack_code: str | None = None
    language: str | None = None  # the matched word's own language ("sita" -> "es")


def _fold(text: str) -> str:
    """Lower case without accents: "Sí, MAÑANA" -> "si, manana"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _normalize(text: str) -> _Message:
    folded = _fold(text)
    flat = re.sub(r"[^a-z0-9']+", " ", folded)
    # Keep apostrophes only inside words ("can't", "od'd"), drop quotes around words.
    flat = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", flat)
    flat = " ".join(flat.split())
    tokens = tuple(word.replace("'", "") for word in flat.split())
    spanish = any(ch in _ES_CHARS for ch in text)
    return _Message(flat, tokens, folded, spanish, assess(flat))


def _dedupe(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """Collapse repeated words: "stop stop stop" -> "stop"."""
    return tuple(t for i, t in enumerate(tokens) if i == 0 or t != tokens[i - 1])


def _strip_edges(
    tokens: tuple[str, ...], leading: frozenset[str], trailing: frozenset[str]
) -> tuple[str, ...]:
    start, end = 0, len(tokens)
    while start < end and tokens[start] in leading:
        start += 1
    while end > start and tokens[end - 1] in trailing:
        end -= 1
    return tokens[start:end]


def _typo_target(word: str) -> str | None:
    """The keyword `word` is a typo of, or None. Ambiguous typos match nothing."""
    if len(word) < _TYPO_MIN_LETTERS or not word.isalpha() or word in _TYPO_STOPLIST:
        return None
    targets = [kw for kw in _KEYWORDS if one_edit_apart(word, kw)]
    intents = {_KEYWORDS[kw][0] for kw in targets}
    return targets[0] if len(intents) == 1 else None


# --------------------------------------------------------------------------------------
# Rules, in precedence order. Each returns a _Match or None.
# --------------------------------------------------------------------------------------
def _match_carrier_keyword(msg: _Message) -> _Match | None:
    """STOP, START, HELP and their siblings as the whole message."""
    core = _strip_edges(_dedupe(msg.tokens), _CARRIER_LEADING, _CARRIER_TRAILING)
    found = _CARRIER_KEYWORDS.get(" ".join(core))
    if found is None:
        return None
    intent, keyword = found
    return _Match(intent, f"carrier:{keyword}")


def _match_red_flag_emoji(msg: _Message) -> _Match | None:
    """🆘 or 🚑 anywhere. Checked before the carrier keywords: "HELP 🚑" is not bare."""
    for emoji, label in _RED_FLAG_EMOJI.items():
        if emoji in msg.folded:
            return _Match(Intent.URGENT, f"red_flag:{label}")
    return None


def _match_red_flag(msg: _Message) -> _Match | None:
    """Emergency warning signs anywhere, negated or not: safety before convenience.
    The concepts and the rules that combine them are in recovery.domain.triage."""
    evidence = msg.triage.evidence
    if evidence is None:
        return None
    return _Match(Intent.URGENT, evidence, language=msg.triage.language)


def _match_opt_out_phrase(msg: _Message) -> _Match | None:
    """ "stop texting me", "please stop calling", "no me manden mensajes"."""
    for pattern in _OPT_OUT_RES:
        found = pattern.match(msg.flat)
        if found:
            return _Match(Intent.STOP, f"opt_out_phrase:{found.group(1)}")
    return None


def _match_ack(msg: _Message) -> _Match | None:
    """ "ACK", "ack 4821", "Ack #A7K2 on it" from the on-call clinician."""
    if not msg.tokens or msg.tokens[0] not in _ACK_WORDS:
        return None
    rest = _strip_edges(msg.tokens[1:], frozenset(), _ACK_TRAILING)
    if not rest:
        return _Match(Intent.ACK, "ack")
    if len(rest) == 1 and _ACK_CODE.match(rest[0]):
        code = rest[0].upper()
        return _Match(Intent.ACK, f"ack:{code}", ack_code=code)
    return None  # "ack 12", "ack I forgot": not a valid acknowledgement


def _match_menu_digit(msg: _Message) -> _Match | None:
    """The whole reply is one menu digit: "1.", "#2", "3)", "4️⃣", "option 2", "dos"."""
    if _NOT_A_MENU_DIGIT.search(msg.folded):
        return None
    core = [t for t in _dedupe(msg.tokens) if t not in _DIGIT_FILLERS]
    if len(core) != 1:
        return None
    word = core[0]
    digit = _NUMBER_WORDS.get(word, word)
    intent = _MENU_DIGITS.get(digit)
    if intent is None:
        return None
    language = "es" if word in _ES_NUMBER_WORDS else "en" if word in _NUMBER_WORDS else None
    return _Match(intent, f"digit:{digit}", language=language)


def _urgent_typo(word: str) -> str | None:
    """ "urgnet" -> "urgent": URGENT typos are matched anywhere in a message (safety)."""
    if len(word) < 5 or word in _TYPO_STOPLIST:
        return None
    return next((kw for kw in _URGENT_KEYWORDS if one_edit_apart(word, kw)), None)


def _match_keyword(msg: _Message) -> _Match | None:
    """Exact menu keywords anywhere. URGENT (or a typo of it) beats the others;
    otherwise the first keyword mentioned wins."""
    for word in msg.tokens:
        if word in _URGENT_KEYWORDS:
            return _Match(Intent.URGENT, f"keyword:{_KEYWORDS[word][1]}")
    for word in msg.tokens:
        target = _urgent_typo(word)
        if target is not None:
            language = "es" if target in _ES_KEYWORDS else "en"
            evidence = f"typo:{word.upper()}->{_KEYWORDS[target][1]}"
            return _Match(Intent.URGENT, evidence, language=language)
    for word in msg.tokens:
        if word in _KEYWORDS:
            intent, keyword = _KEYWORDS[word]
            return _Match(intent, f"keyword:{keyword}")
    return None


def _match_typo(msg: _Message) -> _Match | None:
    """A keyword typo that is the whole reply or nearly so: "BILLNG", "refil please"."""
    if len(msg.tokens) > _TYPO_MAX_WORDS:
        return None
    core = [t for t in msg.tokens if t not in _TYPO_FILLERS]
    if len(core) != 1:
        return None
    target = _typo_target(core[0])
    if target is None:
        return None
    intent, keyword = _KEYWORDS[target]
    language = "es" if target in _ES_KEYWORDS else "en"
    return _Match(intent, f"typo:{core[0].upper()}->{keyword}", language=language)


def _match_synonym(msg: _Message, skip: frozenset[str] = frozenset()) -> _Match | None:
    """The first specific phrase mentioned, else the first generic one."""
    for wanted in (True, False):
        hits = [
            (found.start(), order, intent, label, language)
            for order, (intent, label, language, pattern, specific) in enumerate(_SYNONYM_RES)
            if specific is wanted
            and f"synonym:{label}" not in skip
            and (found := pattern.search(msg.flat))
        ]
        if hits:
            _, _, intent, label, language = min(hits)
            return _Match(intent, f"synonym:{label}", language=language)
    return None


def _locale_language(locale: str | None) -> str:
    return "es" if locale and locale.strip().lower().startswith("es") else "en"


def _detect_language(msg: _Message, hint: str | None, locale: str | None) -> str:
    """Majority of marker words (the matched word's own language is one more vote);
    the conversation's locale when the text is silent."""
    spanish = sum(t in _ES_WORDS for t in msg.tokens) + msg.spanish_chars + (hint == "es")
    english = sum(t in _EN_WORDS for t in msg.tokens) + (hint == "en")
    if spanish > english:
        return "es"
    if english > spanish:
        return "en"
    return _locale_language(locale)


# The precedence of the module docstring, in the order the rules are tried.
_RULES = (
    _match_red_flag_emoji,  # 1. 🆘/🚑: "HELP 🚑" is not a bare keyword
    # 2. A bare carrier keyword holds no red-flag phrase; trying it before them makes
    # sure that no pattern added later can turn "STOP" into a page.
    _match_carrier_keyword,
    _match_red_flag,  # 1. red-flag phrases, anywhere, negated or not
    _match_opt_out_phrase,  # 2. "stop texting me" (after the red flags)
    _match_ack,  # 3.
    _match_menu_digit,  # 4.
    _match_keyword,  # 5. exact keywords, URGENT typos anywhere
    _match_typo,  # 5. typos of the whole reply
    _match_synonym,  # 6.
)


# Replies that name a medicine only as a noun ("this medication makes me dizzy") ask
# about a symptom, not for a refill, when they also name one.
_MEDICINE_NOUNS = frozenset({"synonym:medication", "synonym:medicina"})
# Intents that are about our messages or pages, never about the patient's health.
_NOT_CLINICAL = frozenset({Intent.STOP, Intent.START, Intent.HELP, Intent.ACK, Intent.URGENT})


def _clinical(msg: _Message, found: _Match | None) -> tuple[_Match | None, tuple[str, ...]]:
    """The clinical concern tier: a symptom, illness or injury and no red flag. A reply
    we would not otherwise understand becomes CLINICAL; a booking, billing or refill
    request keeps its intent and carries the concerns (a nurse's task is added)."""
    if found is not None and found.intent in _NOT_CLINICAL:
        return found, ()
    concerns = tuple(concept.value for concept in msg.triage.concerns)
    if not concerns:
        return found, ()
    evidence = "concern:" + "+".join(concerns)
    language = msg.triage.language
    if found is None:
        return _Match(Intent.CLINICAL, evidence, language=language), concerns
    if found.evidence in _MEDICINE_NOUNS:
        other = _match_synonym(msg, skip=_MEDICINE_NOUNS)
        return (other or _Match(Intent.CLINICAL, evidence, language=language)), concerns
    return found, concerns


def classify(text: str, locale: str | None = None) -> Classification:
    """Classify one inbound SMS. ``locale`` is the conversation's language ("en",
    "es", "es-MX"), used only when the text itself does not show its language."""
    msg = _normalize(text or "")
    found = next((m for rule in _RULES if (m := rule(msg)) is not None), None)
    found, concerns = _clinical(msg, found)
    if found is None:
        return Classification(Intent.UNKNOWN, _detect_language(msg, None, locale), "none")
    language = _detect_language(msg, found.language, locale)
    return Classification(found.intent, language, found.evidence, found.ack_code, concerns)
