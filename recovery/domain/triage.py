"""Red flags by composition: clinical concepts found in a reply, and the rules that
combine them into an emergency.

Patients describe a situation, not a listed phrase: "stung by a wasp and his face is
swelling", "she got into my pills", "my 2 week old is hot". So a reply is first read
for *concepts* (airway, chest, consciousness, allergy, ingestion, substance, infant,
fever, ...), each written once in English and Spanish with the text-speak and the
misspellings patients use; then the **rules** say which concepts, alone or together,
are an emergency. The evidence of a red flag names the concepts of the rule that fired:
``red_flag:allergy+swelling``.

Sources, by category (the corpus in tests/triage/ is written from the same lists):
* American College of Emergency Physicians, adult and child warning signs, as quoted by
  MedlinePlus "Recognizing medical emergencies" (medlineplus.gov/ency/article/001927.htm):
  bleeding that will not stop, breathing problems, change in mental status, chest pain,
  choking, coughing or vomiting blood, fainting, suicidal or homicidal feelings, head or
  spine injury, severe or persistent vomiting, sudden injury (vehicle accident, burns,
  smoke, near drowning, deep wound), sudden severe pain, sudden dizziness, weakness or
  change in vision, swallowing a poisonous substance, severe abdominal pain, unusual
  headache, inability to speak, swelling of the face, eyes or tongue, bluish skin; for
  children: lack of alertness, sleepiness, unable to stand or walk, abnormal breathing,
  not feeding, cyanosis, seizure, fever with a change in mental status or a stiff neck,
  unstoppable bleeding.
* Stroke, BE-FAST: Balance, Eyes, Face drooping, Arm weakness, Speech, Time.
* American Heart Association, heart attack: chest discomfort; pain in the arms, back,
  neck or jaw; shortness of breath; cold sweat, nausea, lightheadedness.
* 988 Lifeline and NIMH suicide warning signs, direct and indirect: wanting to die,
  being a burden, no reason to live, feeling trapped, goodbyes, giving things away, a plan.

Safety before convenience: negation never cancels a concept ("no chest pain" still
names chest pain) and a past mention counts; a human reading a false alarm is cheap.

A reply that names a concept marked as a *concern* (a symptom, an illness, an injury)
but fires no rule is a clinical concern: a nurse calls back (see the replies service).

Pure standard library, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from recovery.domain.spelling import one_edit_apart

__all__ = ["Assessment", "Concept", "RED_FLAG_RULES", "assess"]


class Concept(StrEnum):
    """What a reply can name. The value is what evidence strings report."""

    # Alone an emergency (see RED_FLAG_RULES).
    AIRWAY = "airway"  # can't breathe, choking, gasping, wheezing, blue lips, throat closing
    CHEST = "chest"  # chest pain, pressure, tightness; heart attack
    CONSCIOUSNESS = "consciousness"  # passed out, fainted, collapsed, won't wake, limp
    MENTAL_STATUS = "mental_status"  # confused, disoriented, not making sense
    NEURO = "neuro"  # stroke, face drooping, one side weak or numb, slurred, vision lost
    SELF_HARM = "self_harm"  # suicide, direct and indirect; self-injury
    HARM_OTHERS = "harm_others"  # going to hurt or kill someone
    SEIZURE = "seizure"
    OVERDOSE = "overdose"  # overdosed, took too many, saved up pills
    POISON = "poison"  # poison, bleach, antifreeze (not food poisoning)
    BLOOD_OUT = "blood_out"  # coughing or vomiting blood
    SEVERE_PAIN = "severe_pain"  # sudden, worst, unbearable, excruciating pain
    PERSISTENT_VOMITING = "persistent_vomiting"  # can't stop, can't keep anything down
    FACE_SWELLING = "face_swelling"  # face, lips, tongue, eyes, throat swelling
    ANAPHYLAXIS = "anaphylaxis"  # an allergic reaction; had to use the EpiPen
    HEAD_INJURY = "head_injury"  # hit his head, concussion
    MAJOR_TRAUMA = "major_trauma"  # car crash, fall from height, stabbed, shot, drowning, smoke
    DEEP_WOUND = "deep_wound"  # deep cut, bone showing
    LABOR = "labor"  # water broke
    FETAL_MOVEMENT = "fetal_movement"  # the baby stopped moving
    VERY_HIGH_FEVER = "very_high_fever"  # 104 F / 40 C and up
    FEVER_DANGER = "fever_danger"  # stiff neck, purple rash, a rash that doesn't fade
    LETHARGY = "lethargy"  # floppy, very drowsy, lethargic, not acting like herself
    CANT_WALK = "cant_walk"  # unable to stand or walk
    DYING = "dying"
    EXPLICIT = "emergency"  # emergency, 911, ambulance, SOS
    # Red flags only in combination; most of them are concerns alone.
    ALLERGY = "allergy"  # allergic, sting, bite, hives, peanuts
    SWELLING = "swelling"
    INGESTION = "ingestion"  # swallowed, drank, ate, got into
    HAZARD = "substance"  # battery, magnets, bleach, pods, coin, chemicals
    MEDICINE = "medicine"  # pills, tylenol, insulin, vitamins
    AMOUNT = "amount"  # a bottle, a bunch, all, too many, double
    TRAUMA = "trauma"  # fell, accident, burned, cut, hit
    BURN = "burn"
    BLEEDING = "bleeding"
    SEVERITY = "severity"  # a lot, won't stop, gushing, soaked, heavy, badly
    SURGERY = "surgery"  # surgery, incision, stitches, delivery
    PREGNANCY = "pregnancy"
    INFANT = "infant"  # newborn, N days or weeks old, 1-2 months old
    BABY = "baby"  # baby, bebé: the age is not said
    CHILD = "child"  # toddler, kid, N year old
    FEVER = "fever"
    RASH = "rash"
    FEEDING = "feeding"  # won't eat, won't feed
    SUDDEN = "sudden"
    DIZZY = "dizzy"  # dizzy, lightheaded, faint-ish
    SWEAT = "sweat"  # cold sweat, clammy
    NAUSEA = "nausea"
    RADIATING = "radiating"  # jaw, left arm, between the shoulder blades
    HEADACHE = "headache"
    VISION = "vision"  # blurry, double
    NUMB = "numbness"
    PAIN = "pain"
    SYMPTOM = "symptom"  # cough, diarrhoea, itch, tired, can't sleep ...
    ILLNESS = "illness"  # flu, infection, covid, strep, UTI ...
    INJURY = "injury"  # sprain, broken, bruise, twisted
    MENTAL_HEALTH = "mental_health"  # depressed, anxious, panic attacks


# Concepts that, without any rule firing, make a reply a clinical concern: it names a
# symptom, an illness or an injury. The others only qualify ("pregnant", "my baby",
# "pills", "a lot", "allergy" in "refill my allergy medicine").
CONCERNS: frozenset[Concept] = frozenset(
    {Concept.SWELLING, Concept.TRAUMA, Concept.BURN, Concept.BLEEDING, Concept.FEVER}
    | {Concept.RASH, Concept.DIZZY, Concept.SWEAT, Concept.NAUSEA, Concept.HEADACHE}
    | {Concept.VISION, Concept.NUMB, Concept.PAIN, Concept.SYMPTOM, Concept.ILLNESS}
    | {Concept.INJURY, Concept.MENTAL_HEALTH, Concept.FEEDING, Concept.RADIATING}
)

C = Concept
# Each rule is the set of concepts that must all be named. The first rule that fires
# is the evidence. Single concepts first: what ACEP, BE-FAST, the AHA and 988 list as
# an emergency on its own.
RED_FLAG_RULES: tuple[tuple[Concept, ...], ...] = (
    (C.EXPLICIT,),
    (C.SELF_HARM,),
    (C.HARM_OTHERS,),
    (C.AIRWAY,),
    (C.CHEST,),
    (C.CONSCIOUSNESS,),
    (C.NEURO,),
    (C.SEIZURE,),
    (C.MENTAL_STATUS,),
    (C.LETHARGY,),
    (C.OVERDOSE,),
    (C.POISON,),
    (C.BLOOD_OUT,),
    (C.FACE_SWELLING,),
    (C.ANAPHYLAXIS,),
    (C.HEAD_INJURY,),
    (C.MAJOR_TRAUMA,),
    (C.DEEP_WOUND,),
    (C.SEVERE_PAIN,),
    (C.PERSISTENT_VOMITING,),
    (C.LABOR,),
    (C.FETAL_MOVEMENT,),
    (C.VERY_HIGH_FEVER,),
    (C.FEVER_DANGER,),
    (C.CANT_WALK,),
    (C.DYING,),
    # Anaphylaxis: an allergy or a sting with swelling anywhere.
    (C.ALLERGY, C.SWELLING),
    # Swallowing: a hazard at all, medicine in quantity.
    (C.INGESTION, C.HAZARD),
    (C.INGESTION, C.MEDICINE, C.AMOUNT),
    # Injuries with a neurological sign or bleeding.
    (C.TRAUMA, C.NUMB),
    (C.TRAUMA, C.BLEEDING),
    (C.TRAUMA, C.DIZZY),
    (C.BURN, C.SEVERITY),
    (C.BURN, C.BABY),
    # Bleeding that is heavy, or in pregnancy, or after surgery, or with faintness.
    (C.BLEEDING, C.SEVERITY),
    (C.BLEEDING, C.PREGNANCY),
    (C.BLEEDING, C.SURGERY),
    (C.BLEEDING, C.DIZZY),
    # Any other bleeding too: the replies table (tests/unit/intent_cases.tsv) has always
    # paged "the bleeding stopped", and a nurse can downgrade a nosebleed; kept last so
    # the evidence names the combination when there is one.
    # Pregnancy with pain, headache or a change in vision.
    (C.PREGNANCY, C.PAIN),
    (C.PREGNANCY, C.HEADACHE),
    (C.PREGNANCY, C.VISION),
    (C.PREGNANCY, C.DIZZY),
    # Fever in an infant (or a baby of unsaid age), or with a danger sign.
    (C.FEVER, C.INFANT),
    (C.FEVER, C.BABY),
    (C.INFANT, C.FEEDING),
    (C.BABY, C.FEEDING),
    # Heart attack without the word chest: pain where it radiates, with a body sign.
    (C.RADIATING, C.SWEAT),
    (C.RADIATING, C.NAUSEA),
    (C.RADIATING, C.NUMB),
    # Sudden dizziness, weakness, numbness, vision change or headache (ACEP, BE-FAST).
    (C.SUDDEN, C.DIZZY),
    (C.SUDDEN, C.NUMB),
    (C.SUDDEN, C.VISION),
    (C.SUDDEN, C.HEADACHE),
    (C.SUDDEN, C.PAIN),
    (C.BLEEDING,),
)
del C


@dataclass(frozen=True)
class Assessment:
    concepts: frozenset[Concept]
    red_flag: tuple[Concept, ...] | None  # the rule that fired, if any
    # "en" or "es" when the red flag (or, without one, the concerns) was named only in
    # that language's words; None when the words do not tell ("suicida" is both).
    language: str | None

    @property
    def evidence(self) -> str | None:
        return "red_flag:" + "+".join(self.red_flag) if self.red_flag else None

    @property
    def concerns(self) -> tuple[Concept, ...]:
        """The symptoms, illnesses and injuries named, in a stable order."""
        return tuple(c for c in Concept if c in self.concepts and c in CONCERNS)


# --------------------------------------------------------------------------------------
# Patterns, matched on the normalised text of intents._normalize (lower case, accents
# stripped, punctuation as single spaces, apostrophes kept inside words) after the
# text-speak and spelling fixes below. Each is wrapped in word boundaries.
# --------------------------------------------------------------------------------------
_G = r"(?: \S+){0,3}"  # up to three words in between
_G5 = r"(?: \S+){0,5}"
_WHO = r"(?:my|his|her|their|your|the|our)"
_PERSON = r"(?:he|she|they|it|him|her|them|i|my ?self|him ?self|her ?self|baby|son|daughter)"
_CANT = r"(?:can'?t|cannot|can not|couldn'?t|could not|unable to|won'?t|will not|isn'?t able to)"
_BODY = (
    r"(?:back|knee|knees|neck|shoulder|shoulders|hip|hips|foot|feet|ankle|ankles|wrist"
    r"|hand|hands|arm|arms|leg|legs|head|stomach|tummy|belly|tooth|teeth|ear|ears|eye|eyes"
    r"|throat|side|joints?|elbow|finger|toe|toes|period|cramps)"
)
# "the middle of my chest", "center of the chest": where the AHA says the feeling is.
_CHEST_PLACE = (
    r"(?:(?:middle|center|centre|left side|left) of (?:my |his |her |the )?)?"
    r"(?:chest|chst|cheast|chets|breastbone|breast bone|sternum)"
)
_CHEST_FEEL = (
    r"(?:pain\w*|pressure|tight\w*|hurt\w*|discomfort|uncomfortable|squeez\w*|heavy|heaviness"
    r"|full|fullness|ache\w*|aching|crush\w*|burn\w*|on fire|stabb\w*|sharp)"
)
_ES_NO_PUEDE = r"(?:no (?:puede|puedo|pueden|podia|pudo))"

_PATTERNS: dict[Concept, tuple[str, str]] = {
    Concept.EXPLICIT: (
        r"emergenc(?:y|ies)|911|9 1 1|ambulance|sos|er now|need an er|urgently",
        r"emergencias?|urgencias?|ambulancia|urgentemente",
    ),
    Concept.SELF_HARM: (
        r"kill(?:ing)? (?:my|him|her|them) ?sel(?:f|ves)|kms|unaliv\w*|suicid\w*|sucid\w*"
        r"|suicidle|wan(?:t|ts|na|ted) to die|wanna die|(?:end|ending|take|taking) (?:my|his|her)"
        r" (?:own )?life|end(?:ing)? it all|end it (?:tonight|today|now)"
        r"|(?:want|wanna|going|gonna|plan|planning|ready) to end it\b"
        r"|want it all to end|(?:hurt|harm|cut|cutting|hurting|harming) (?:my|him|her) ?self"
        r"|self ?harm\w*|cut (?:my|his|her) wrists?|(?:don'?t|do not|doesn'?t) (?:want to|wanna)"
        r" (?:live|be alive|be here|wake up|go on)|better off (?:dead|without me)"
        r"|(?:i'?m|i am|im|being|feel like|just) (?:just |such |only )?a burden"
        r"|no (?:point|reason) (?:in |to )?(?:living|live|go on|going on)"
        r"|point (?:of|in) (?:living|life|going on)|can'?t go on"
        r"|no way out|(?:don'?t|do not|can'?t|cannot) see (?:any|a) way out|goodbye (?:letters?|notes?)|my goodbye|never wake up"
        r"|(?:give|giving|gave|given) away (?:my|all my|all of my)"
        r"|won'?t need (?:it|them) (?:anymore|soon)|sav(?:e|ed|ing) up (?:my )?pills"
        r"|(?:feel like|thinking about|thinking of|thought about|considering|want to|wanna)"
        r" end(?:ing)? (?:it|things|everything)|end (?:things|everything)"
        r"|(?:not|won'?t) (?:be )?(?:here|around) tomorrow|in case i'?m not (?:here|around)"
        r"|suicide note|(?:wrote|writing|left) (?:a )?(?:note|letter)s? (?:for|to) (?:my )?"
        r"(?:family|kids|children|wife|husband|mom|dad|parents)"
        r"|(?:if|when) i(?:'?m| was| were| am) (?:dead|gone)|(?:happier|better) (?:if|without) me"
        r"|pills saved|saved (?:up )?(?:my )?pills|stockpil\w*"
        r"|(?:life|it) (?:isn'?t|is not|not|ain'?t) worth (?:living|it anymore)|not worth living"
        r"|feel(?:ing)? trapped|no way forward|disappear (?:forever|for good)"
        r"|wish i (?:was|were|had) never (?:been )?born|wish i wasn'?t (?:alive|born)"
        r"|jump(?:ing)? off (?:a|the) (?:bridge|building|roof|cliff)|gun to end|(?:nobody|no one) (?:would|will) (?:even )?miss me",
        r"(?:me |se )?quiero morir|quiere morir\w*|quiero morirme|(?:ya )?no quiero vivir"
        r"|matar(?:me|se)|suicid\w*|quitar(?:me|se) la vida|soy una carga|mejor sin mi"
        r"|(?:terminar|acabar) con todo|ya no aguanto|(?:me|se) cort\w* las munecas"
        r"|cortarme|hacerme dano|ya no quiero estar aqui|sentido a (?:la|mi) vida"
        r"|(?:acabar|terminar) con mi vida|desaparecer para siempre|no vale la pena vivir",
    ),
    Concept.HARM_OTHERS: (
        r"(?:going to|gonna|want to|wanna|will) (?:hurt|kill) (?:someone|somebody|people|"
        r"everyone|him|her|them)",
        r"(?:voy a|va a|quiero) matar a",
    ),
    Concept.AIRWAY: (
        rf"{_CANT}(?: \S+){{0,2}} (?:breath\w*|breth\w*|get (?:any )?air|catch {_WHO} breath)"
        r"|(?:barely|hard to|trouble|difficulty|difficult to|struggling to|problems?|hard time"
        r"|hard time catching) (?:\S+ ){0,2}breath\w*|catch(?:ing)? (?:my|his|her) breath"
        r"|short(?:ness)? of breath|out of breath|sob|gasp\w*|(?:struggling|fighting|gasping) for"
        r" (?:air|breath)|can'?t get (?:enough )?air|wheez\w*|chok(?:e|es|ed|ing)"
        r"|chocking|suffocat\w*|throat (?:is |feels )?(?:\S+ ){0,2}(?:clos\w*|tight\w*)"
        r"|(?:not|isn'?t|stopped|quit|wasn'?t|barely) breathing|stuck in (?:his|her|my) throat"
        r"|breathing (?:is |sounds |looks )?(?:\S+ )?(?:fast|funny|weird|noisy|rattly|labou?red"
        r"|wrong|isn'?t right|not right|strange|hard)|labou?red breathing|asthma attack"
        r"|ribs? (?:suck|sucking|pull\w*)|(?:lips|skin|face) (?:are |is |look |looks |turning"
        r" |turned )?(?:blue|purple|gr[ae]y|bluish)|turning blue|looks gr[ae]y|can'?t get air",
        rf"{_ES_NO_PUEDE} respirar|no respira|me falta (?:el )?aire|falta de aire"
        r"|(?:se esta|me estoy|esta) ahogando|ahog\w*|atragant\w*|asfixi\w*"
        r"|dificultad para respirar|respira (?:mal|raro|muy rapido)"
        r"|labios (?:morados|azules)|(?:se me|se le) (?:cierra|cerro|esta cerrando) la garganta"
        r"|siento que me ahogo",
    ),
    Concept.CHEST: (
        # The AHA's words for the heart-attack feeling ("uncomfortable pressure, squeezing,
        # fullness or pain in the center of the chest"), on either side of the chest and up
        # to five words away: patients put a place between them ("squeezing feeling in the
        # middle of my chest").
        rf"{_CHEST_PLACE}{_G5} {_CHEST_FEEL}|{_CHEST_FEEL}{_G5} {_CHEST_PLACE}"
        r"|heart attack|cardiac arrest|heart (?:hurts|is hurting|pains?|aches?)|(?:sitting|weight|pressing|pushing|standing) on (?:my|his|her)"
        r" chest|clutch\w* (?:his|her|my) chest|elephant",
        rf"(?:dolor|duele|duelen|dolia|presion|opresion|apret\w*|aprieta|pesadez|molestia|ardor){_G5}"
        rf" (?:el |en el |del )?pecho|pecho{_G5} (?:dolor|duele|apret\w*|aprieta|presion|pesad\w*)"
        r"|infarto|ataque (?:al|del) corazon|ataque cardiaco",
    ),
    Concept.CONSCIOUSNESS: (
        r"pass(?:ed|ing|d)? out|faint(?:ed|ing|s)?|collaps\w*|unconscious|unresponsive"
        r"|(?:won'?t|will not|can'?t|cannot|doesn'?t|not|isn'?t) (?:wake|waking|woke)(?: up)?"
        r"|hard to (?:wake|arouse|rouse)|(?:can'?t|cannot) keep (?:him|her|them) awake"
        r"|(?:not|isn'?t|won'?t|doesn'?t) (?:respond\w*|reacting)(?! to (?:my|our|your) (?:texts?|messages?|calls?|emails?))"
        r"|black(?:ed|ing|s)? out|out cold|(?:lost|loss of|losing) consciousness|barely (?:conscious|awake|responsive)"
        r"|semi ?conscious|in and out of consciousness"
        r"|dropped to the floor|on the floor (?:and )?(?:\S+ )?(?:not moving|unconscious)"
        r"|(?:isn'?t|not|stopped) moving|(?:is|went|gone|so|really|very|and) limp",
        r"desmay\w*|desmall\w*|desvanec\w*|no (?:despierta|responde|reacciona)|desplom\w*"
        r"|se (?:cayo|callo) al (?:piso|suelo)"
        r"|inconsciente|perdio el conocimiento|perdida del conocimiento",
    ),
    Concept.MENTAL_STATUS: (
        r"(?:is|seems|was|getting|got|very|really|so|suddenly|and|now|more|acting) confused"
        r"(?! (?:about|by|with|why|what|how|on|as to|if|over|regarding))"
        r"|disoriented|not making (?:any )?sense|acting (?:really |very |so )?(?:strange|weird"
        r"|strangely|funny|odd|crazy)|doesn'?t know where (?:she|he|they) (?:is|are)"
        r"|keeps asking the same|doesn'?t know (?:who|where|what)|talking nonsense|making no sense|gibberish"
        r"|(?:doesn'?t|does not|didn'?t|isn'?t|not|can'?t) recogni[sz](?:e|ing)",
        r"confundid[oa](?! con| sobre| por)|desorientad[oa]|no (?:me |nos )?reconoce|dice cosas sin sentido|delir\w*|no sabe donde esta",
    ),
    Concept.LETHARGY: (
        r"floppy|lethargic|(?:very|really|super|so|extremely|unusually) (?:drowsy|sleepy)"
        r"|sleeping all (?:the )?(?:time|day)|won'?t stop sleeping"
        r"|not acting like (?:him|her|them|my) ?sel(?:f|ves)",
        r"muy decaid[oa]|no quiere despertar|aletargad[oa]|muy somnolient[oa]|muy dormid[oa]",
    ),
    Concept.NEURO: (
        r"strokes?|mini stroke|transient ischemic"
        r"|face(?: \S+){0,2} droop\w*|droop\w*(?: \S+){0,3} (?:face|side|mouth)|facial droop\w*"
        r"|(?:face|smile) (?:is |looks )?(?:\S+ )?(?:crooked|lopsided|uneven)"
        r"|slurr\w*|speech(?: \S+){0,3} (?:slurred|garbled|jumbled|weird|strange|off|funny)|droop\w*|garbled|words (?:are )?(?:coming out )?"
        r"(?:wrong|jumbled|mixed up)|(?:can'?t|cannot|unable to) (?:talk|speak)"
        r" (?:right(?! now)|properly|clearly|normally|at all)|trouble (?:speaking|talking)"
        rf"|(?:numb(?:ness|ed|ing|s)?|weak\w*|tingl\w*|paralyz\w*){_G} (?:one|left|right) side"
        rf"|(?:one|left|right) side{_G} (?:numb(?:ness|ed|ing|s)?|weak\w*|paralyz\w*)"
        r"|(?:can'?t|cannot|couldn'?t) (?:move|lift|feel|raise) (?:my|his|her|their|the)"
        r" (?:\S+ )?(?:arm|arms|leg|legs|face|hand|side|body)"
        r"|(?:arm|leg|face|hand) (?:is |went |feels |got |has gone )?(?:numb|weak|dead)"
        r"|weakness in (?:my|his|her) (?:\S+ )?(?:arm|leg|face)|(?:arm|leg) weakness"
        r"|arm (?:keeps )?drift\w*|(?:can'?t|cannot) see out of|vision (?:went|goes|is going)"
        r" (?:black|dark|blurry)|lost (?:my |his |her )?vision|vision loss|went blind"
        r"|double vision|worst headache|headache(?: \S+){0,4} (?:of my life|ever had)"
        r"|thunderclap|loss of balance|lost (?:his |her |my )?balance"
        r"|can'?t walk straight|drooling on one side|(?:arm|leg|hand|foot|side) (?:\S+ )?(?:stopped"
        r" working|won'?t work|isn'?t working|gave out)"
        r"|(?:head|headache)(?: \S+){0,4} (?:worse than ever|worst ever|worst i'?ve ever)|can'?t find (?:my|his|her|the) words"
        r"|(?:half|one side of) (?:his|her|my) face",
        r"derrame|embolia|cara (?:caida|chueca|torcida)|boca (?:chueca|torcida)"
        rf"|{_ES_NO_PUEDE} mover (?:el|la|los|las|un|una|su|mi) (?:\S+ )?(?:brazo|pierna|lado|cara)"
        r"|(?:se me|se le) (?:durmio|adormecio) (?:un|el|la|medio) (?:lado|cara|brazo)"
        r"|arrastra (?:las )?palabras|habla (?:raro|chistoso|arrastrado)"
        rf"|{_ES_NO_PUEDE} hablar(?! ahora| en este momento| por telefono)|no (?:veo|ve) (?:de|por) un ojo|perdi\w* la vista"
        r"|peor dolor de cabeza|perdio el equilibrio|(?:se le|se me) (?:torcio|cayo) (?:la boca|la cara)",
    ),
    Concept.SEIZURE: (
        r"seizures?|seizing|seizure|convuls\w*|(?:had|having|has) a fit|epileptic (?:fit|attack)"
        r"|fitting|eyes (?:rolled|rolling|roll) (?:back|up)|shaking (?:all over|uncontrollabl\w*)"
        r"|jerking|twitching all over",
        r"convuls\w*|convulc\w*|(?:le|me) (?:dio|dan|da) (?:un )?ataque(?! de| al| del)",
    ),
    Concept.OVERDOSE: (
        r"overdos\w*|od'?d|od'?ed|od'?ing|od on|took too many|taken too many|took too much"
        r"|taken too much|(?:took|take|swallowed|taken) (?:a |the )?(?:whole )?(?:bunch|bottle"
        r"|handful|all) of",
        r"sobredosis|(?:se )?tomo (?:todas|un frasco|muchas|demasiad\w*)|se tomo todo"
        r"|demasiad[oa]s (?:pastillas|pildoras|medicinas|medicamentos)",
    ),
    Concept.POISON: (
        r"(?<!food )poison\w*(?! ivy| oak)|poisen\w*|bleach|antifreeze|rat (?:poison|bait)"
        r"|pesticide|insecticide|weed killer",
        r"venen\w*|envenen\w*|intoxic\w*(?! alimentaria)|cloro|veneno",
    ),
    Concept.BLOOD_OUT: (
        r"(?:cough\w*|vomit\w*|throw\w* up|threw up|puk\w*|spit\w*)(?: up)? blood"
        r"|blood in (?:my |his |her |the )?(?:vomit|puke)",
        r"(?:vomit\w*|tos\w*|escup\w*)(?: con)? sangre|vomito con sangre",
    ),
    Concept.SEVERE_PAIN: (
        r"(?:severe|unbearable|excruciating|worst|terrible|crushing|sudden)(?: \S+){0,2}"
        r" (?:pain|pains|ache)|pain (?:is |so )?(?:unbearable|excruciating)|10 10|10 out of 10"
        r"|hurts? so (?:bad|much) (?:that )?(?:i|he|she|they) (?:can'?t|cannot)",
        r"dolor(?: \S+){0,3} (?:insoportable|muy fuerte|intenso|severo|terrible)"
        r"|dolor insoportable",
    ),
    Concept.PERSISTENT_VOMITING: (
        r"(?:can'?t|won'?t|doesn'?t|keeps?|didn'?t|not) (?:stop )?(?:vomiting|throwing up"
        r"|puking)|can'?t keep (?:anything|any thing|food|water|liquids) down"
        r"|(?:vomiting|throwing up)(?: \S+){0,3} (?:nonstop|non stop|all day|for (?:two|2|3"
        r"|three) days)",
        r"no (?:para|deja) de vomitar|vomit\w* sin parar",
    ),
    Concept.FACE_SWELLING: (
        r"(?:face|lips?|tongue|throat|eyes?|eyelids?|mouth)(?: \S+){0,3} (?:is |are |feels? )?(?:thick|swell"
        r"\w*|swollen|puff\w*)|(?:swell\w*|swollen|puff\w*)(?: up)? (?:of |in )?(?:my |his "
        r"|her )?(?:face|lips|tongue|throat)",
        r"hinch\w*(?: \S+){0,2} (?:la |los |el )?(?:cara|labios?|lengua|ojos)"
        r"|(?:cara|labios?|lengua|ojos)(?: \S+){0,2} hinchad\w*",
    ),
    Concept.ANAPHYLAXIS: (
        r"(?:use|used|using|gave|give|giving|had to use) (?:my |his |her |the |an )?epi ?pens?"
        r"|anaphyla\w*|allergic reaction|(?:bad|severe|serious|major|big) reaction",
        r"(?:use|usamos|le puse|le di) (?:el |la |su )?epi ?pen|anafila\w*|reaccion alergica",
    ),
    Concept.HEAD_INJURY: (
        r"hit (?:my|his|her|their) head|head (?:injury|trauma)|concussion|hit (?:her|his|my) "
        r"head on|bump(?:ed)? (?:his|her|my) head",
        r"(?:golpe|golpeo|golpeó|pego|pegue|pego) (?:\S+ )?(?:en )?la cabeza|trauma craneal",
    ),
    Concept.MAJOR_TRAUMA: (
        r"(?:car|motorcycle|motorbike|bike|truck|bus|atv|vehicle|auto) (?:accident|crash|wreck)"
        r"|bent (?:weird|wrong|funny|backwards)|(?:looks|is) deformed|out of place|wreck|(?:was|were|been|got) in (?:a|an) (?:\S+ )?(?:accident|crash)|(?:was|got|been) (?:\S+ )?(?:hit by a car|run over)"
        r"|hit by a (?:car|truck)|gunshot|(?:been|got|was) shot|stabbed|drown\w*"
        r"|(?:fell|falls|fallen|fall) (?:off|from|down) (?:a |the |his |her )?(?:roof|ladder"
        r"|stairs|balcony|building|horse|trampoline|tree|bridge)|smoke inhalation"
        r"|breathed in (?:a lot of )?smoke|inhaled smoke|bone (?:is )?sticking out",
        r"accidente de (?:carro|auto|coche|transito|moto)|(?:lo|la) atropell\w*|balazo"
        r"|apunal\w*|ahogad\w*|(?:se )?cayo de (?:la )?(?:escalera|techo|azotea|arbol)",
    ),
    Concept.DEEP_WOUND: (
        r"deep (?:cut|wound|gash)|see (?:the |his |her )?bone|gaping",
        r"cortada profunda|herida profunda|se (?:ve|le ve) el hueso",
    ),
    Concept.LABOR: (
        r"water (?:broke|has broken|just broke)|contractions|leaking (?:fluid|water)|(?:fluid|water)"
        r" (?:is )?leaking",
        r"(?:se me|se le) rompio la fuente|rompi fuente|contracciones",
    ),
    Concept.FETAL_MOVEMENT: (
        r"baby (?:stopped|isn'?t|is not|not|hasn'?t been) moving|(?:haven'?t|havent|not) felt"
        r" (?:the |my )?baby move",
        r"(?:bebe|nino) no se mueve|no siento (?:al|a mi) bebe",
    ),
    Concept.VERY_HIGH_FEVER: (
        r"(?:fever|temp\w*|thermometer)(?: \S+){0,3} (?:10[4-9]|11\d|4[0-3])\b"
        r"|(?:10[4-9]|4[0-3]) (?:degrees|f|c)\b|very high (?:fever|temp\w*)",
        r"(?:fiebre|temperatura|calentura)(?: \S+){0,3} (?:de )?(?:4[0-3]|10[4-9])\b"
        r"|fiebre muy alta",
    ),
    Concept.FEVER_DANGER: (
        r"stiff neck|neck (?:is |feels )?stiff|purple (?:spots|rash|dots)|rash (?:that )?"
        r"(?:doesn'?t|won'?t|does not) fade|petechia\w*",
        r"cuello (?:rigido|tieso|duro)|manchas moradas",
    ),
    Concept.CANT_WALK: (
        r"(?:can'?t|cannot|won'?t|unable to|isn'?t able to) (?:stand|walk|get up)(?: up)?"
        r"(?! straight)",
        rf"{_ES_NO_PUEDE} (?:caminar|pararse|levantarse)|no se (?:levanta|puede levantar)",
    ),
    Concept.DYING: (
        r"(?:i'?m|im|i am|is|he'?s|she'?s|are|think (?:i|he|she) (?:is|am)) dying(?! to\b)",
        r"(?:me estoy|se esta|se nos esta) muriendo",
    ),
    Concept.ALLERGY: (
        r"allerg\w*|stung|sting\w*|bee|wasp|hornet|(?<!a )(?<!little )bit(?! of)|bite|bites|bitten"
        r"|hives|peanuts?"
        r"|epi ?pens?|shrimp|shellfish",
        r"alerg\w*|pico|picadura|abeja|avispa|mordi\w*|ronchas|urticaria|cacahuate|mani",
    ),
    Concept.SWELLING: (
        r"swell\w*|swollen|puff\w*",
        r"hinch\w*|inflamad\w*",
    ),
    Concept.INGESTION: (
        r"swallow\w*|drank|drink|drinking|ate|eaten|eat|got into|took|taken|chewed|lick\w*",
        r"trago|tragó|se trago|tomo|bebio|se comio|comio|mordio",
    ),
    Concept.HAZARD: (
        r"batter(?:y|ies)|magnets?|bleach|detergent|pods?|coins?|chemicals?|cleaner"
        r"|cleaning (?:spray|products?|solution|fluid)|(?:hand )?sanitizer|mouthwash|nail polish"
        r"|penny|pennies|nickel|dime|marbles?|beads?|earrings?|screws?|nails|pins|toy|rat bait"
        r"|pesticide|insecticide|weed killer|polish remover|essential oils?|drain cleaner|lighter|button"
        r"|antifreeze|lamp oil|gasoline|lighter fluid|under the sink|rat poison|drano|lye",
        r"pilas?|baterias?|imanes|iman|cloro|detergente|monedas?|quimic\w*|veneno|gasolina",
    ),
    Concept.MEDICINE: (
        r"pills?|tablets?|meds|medication\w*|medicine\w*|tylenol|advil|ibuprofen|aspirin"
        r"|insulin|vitamins?|gummies|sleeping pills|opioids?|oxy\w*|fentanyl|capsules|syrup",
        r"pastillas?|pildoras?|medicinas?|medicamentos?|insulina|vitaminas|jarabe",
    ),
    Concept.AMOUNT: (
        r"too (?:many|much)|a (?:whole |full )?bottle|whole (?:bottle|jar|pack|box)|a bunch"
        r"|handful|all (?:of )?(?:his|her|my|the)|double|idk how many|don'?t know how many"
        r"|got into|entire|(?:like |about |around )?(?:[1-9]\d|\d{3}) (?:of (?:his|her|my|the) )?"
        r"(?:\S+ )?(?:pills|tablets|advil|tylenol|ibuprofen|aspirins?|gummies|capsules|caps)",
        r"todas|un frasco|muchas|el frasco|toda la caja|demasiad\w*|complet[oa]|enter[oa]",
    ),
    Concept.TRAUMA: (
        r"fell|fall|fallen|falling|tripped|slipped|rolled off|accident|crash\w*|hit by"
        r"|knocked|injur\w*|hurt (?:my|his|her) (?:\S+ )?(?:back|neck|head)",
        r"se cayo|se callo|me cai|caida|accidente|golpe\w*|choque",
    ),
    Concept.BURN: (
        r"burn(?:ed|t|s)?(?! when| while| after| during)|scald\w*|boiling water",
        r"quem\w*|agua hirviendo",
    ),
    Concept.BLEEDING: (
        r"bleed\w*|nose ?bleeds?|bled|bleading|bleding|hemorrhag\w*|haemorrhag\w*|spotting"
        r"|blood(?! (?:pressure|sugar|work|test|tests|draw|count|type|panel|results|thinner))"
        r"|bloody",
        r"(?<!analisis de )(?<!examen de )(?<!prueba de )sangr\w*",
    ),
    Concept.SEVERITY: (
        r"a lot|alot|lots|so much|(?:won'?t|wont|will not|doesn'?t|does not|can'?t|not) stop"
        r"|keeps? (?:bleeding|going)|non ?stop|gush\w*|pour\w*|soak\w*|heavy|heavily"
        r"|everywhere|through (?:the|my|his|her) (?:bandage|clothes|towel)|for an hour"
        r"|badly|severe\w*|big|large|huge|bad(?! cold)",
        r"mucho|mucha|no (?:para|deja)|abundante|sin parar|grave|grande|fuerte",
    ),
    Concept.SURGERY: (
        r"surger\w*|incision|stitches|sutures|operation|post op|c section|delivery|delivered"
        r"|gave birth|procedure",
        r"cirugia|operacion|operaron|puntos|cesarea|parto|di a luz",
    ),
    Concept.PREGNANCY: (
        r"pregnan\w*|preggo|prego|(?:i'?m|i am|she'?s|she is) \d+ (?:weeks?|wks?)\b(?! old| ago)",
        r"embarazad\w*|embarazo|enbarazad\w*",
    ),
    Concept.INFANT: (
        r"newborn|new born|\d+ (?:days?|weeks?|wks?|wk) old|(?:1|2|one|two) (?:months?|mo) old"
        r"|infant",
        r"recien nacid[oa]|de \d+ (?:dias|semanas)|de (?:1|2|un|dos) mes(?:es)?",
    ),
    Concept.BABY: (r"bab(?:y|ies)|baby's|infant", r"bebes?|bebe"),
    Concept.CHILD: (
        r"toddler|kids?|son|daughter|child|children|\d+ (?:years?|yrs?|yr|y o|yo) old"
        r"|(?:he'?s|she'?s|is) (?:[1-9]|1[0-2])\b",
        r"nin[oa]s?|hij[oa]s?|de \d+ anos",
    ),
    Concept.FEVER: (
        r"fever\w*|temp(?:erature)?s?|running hot|(?:is|feels|so|really|very) (?:\S+ )?(?:hot|warm)"
        r"|warm to the touch"
        r"|burning up|chills",
        r"fiebre|calentura|temperatura",
    ),
    Concept.RASH: (r"rash\w*|hives|spots|welts|bumps", r"sarpullido|ronchas|granitos|manchas"),
    Concept.FEEDING: (
        r"(?:won'?t|isn'?t|not|doesn'?t|refus\w*|stopped) (?:to )?(?:eat|eating|feed|feeding"
        r"|nurse|nursing|drink|drinking)",
        r"no (?:quiere|puede) (?:comer|tomar|mamar)|no come",
    ),
    Concept.SUDDEN: (
        r"sudden\w*|all of a sudden|out of nowhere|out of the blue|came on fast",
        r"de repente|repentin\w*|de golpe|subito",
    ),
    Concept.DIZZY: (
        r"dizz\w*|dizy|light ?headed|faint|woozy|vertigo|room (?:is )?spinning",
        r"mare\w*|desvanec\w*",
    ),
    Concept.SWEAT: (
        r"cold sweat|sweat(?:ing|y|s)?|clammy",
        r"sudando|sudor\w*",
    ),
    Concept.NAUSEA: (
        r"nause\w*|nauseous|feel(?:ing)? sick|i feel sick|queasy|sick to (?:my|his|her) stomach",
        r"nause\w*|asco|ganas de vomitar",
    ),
    Concept.RADIATING: (
        r"(?:jaw|left arm)(?: \S+){0,4} (?:pain|ache\w*|aching|hurt\w*)"
        r"|(?:pain|ache|aching|hurts?)(?: \S+){0,3} (?:jaw|left arm|shoulder blades)"
        r"|between (?:my|his|her) shoulder blades",
        r"(?:quijada|mandibula|brazo izquierdo)(?: \S+){0,3} (?:dolor|duele)"
        r"|(?:dolor|duele)(?: \S+){0,4} (?:quijada|mandibula|brazo izquierdo)",
    ),
    Concept.HEADACHE: (
        r"head ?aches?|migraines?|head (?:is )?(?:pounding|throbbing|splitting)",
        r"dolor de cabeza|migrana|jaqueca",
    ),
    Concept.VISION: (
        r"blurr\w* vision|vision (?:is )?blurr\w*|blurry|seeing (?:spots|double)"
        r"|can'?t see (?:well|clearly|straight|anything)",
        r"vista borrosa|veo borroso|no (?:veo|ve) bien",
    ),
    Concept.NUMB: (
        r"numb(?:ness|ed|ing|s)?|tingl\w*|pins and needles|weakness|(?:can'?t|cannot) (?:move|feel)",
        r"entumid\w*|adormec\w*|hormigueo|no siento|debilidad",
    ),
    Concept.PAIN: (
        rf"pain(?:s|ful)?(?! med\w*| pills?| killers?| relievers?| management| clinic| doctor)|hurt\w*|ache\w*|aching|sore|cramp\w*|{_BODY} (?:is |are )?killing me"
        r"|throb\w*",
        r"dolor\w*|duele\w*|me duele|adolorid\w*|colicos",
    ),
    Concept.SYMPTOM: (
        r"cough\w*|diarrh\w*|diarea|itch\w*|vomit\w*|throw\w* up|threw up|puk\w*|constipat\w*"
        r"|heartburn|tired|exhausted|fatigue\w*|(?:can'?t|haven'?t|not) (?:sleep|slept)"
        r"|insomnia|sneez\w*|runny nose|stuffy|congest\w*|red and itchy|lump|mole"
        r"|(?:burns|burning|stings?) when i (?:pee|urinate)|burning when|swollen glands|glands"
        r"|sore throat|fussy|teething|discharge|wound|blood sugar|sugar (?:is |was |has been )?"
        r"(?:high|low)|blood pressure (?:is |was |has been )?(?:high|low|\d+)|(?:bp|pressure)"
        r" (?:is |was )?(?:high|\d+)|(?:is|are|looks?|got|turned|gone|going|very|little|bit) red"
        r"|stung|bitten|bit by|bites?|hives|welts",
        r"tos|diarrea|comezon|picazon|vomit\w*|estrenid\w*|cansad\w*|mocos|gripa"
        r"|arde al orinar|me arde|presion (?:alta|baja)|azucar (?:alta|baja)|me siento mal"
        r"|picadura|pico|ronchas|mordio",
    ),
    Concept.ILLNESS: (
        r"flu(?! shots?| vaccines?| jabs?)|influenza|covid\w*(?! vaccines?| shots?| boosters?)|strep|infection\w*|infected|uti|pink eye|lice|sinus\w*"
        r"|cold sore|a cold|bad cold|chest cold|sick|(?<!')ill|virus|bug going around|gout|flar\w*"
        r"|yeast|food poisoning|poison ivy|asthma (?:is )?(?:acting up|flare\w*)|allergies"
        r" (?:are )?acting up",
        r"gripe|infeccion|resfriado|enferm(?:o|a|os|as|edad|edades)|virus|estreptococ\w*",
    ),
    Concept.INJURY: (
        r"sprain\w*|broke (?:my|his|her)|broken|fractur\w*|twist\w*|bruis\w*|pulled a muscle|strain\w*"
        r"|cut (?:my|his|her)|cut|scrap\w*|injur\w*|dislocat\w*",
        r"torci\w*|torcio|fractur\w*|quebr\w*|lastim\w*|me corte|se corto|esguince|moreton",
    ),
    Concept.MENTAL_HEALTH: (
        r"depress\w*|anxious|anxiety|panic attacks?|panic|stressed|mental health|bipolar",
        r"ansiedad|deprimid\w*|depresion|ataques? de panico|nervios",
    ),
}

# Text-speak and common contractions written without the apostrophe, so the patterns
# need one spelling each: "cnt breathe", "hes not waking up", "alot".
_TEXT_SPEAK: dict[str, str] = {
    "cnt": "can't",
    "cant": "can't",
    "cannt": "can't",
    "wont": "won't",
    "dont": "don't",
    "doesnt": "doesn't",
    "didnt": "didn't",
    "isnt": "isn't",
    "wasnt": "wasn't",
    "havent": "haven't",
    "hasnt": "hasn't",
    "couldnt": "couldn't",
    "hes": "he's",
    "shes": "she's",
    "im": "i'm",
    "ive": "i've",
    "u": "you",
    "ur": "your",
    "pls": "please",
    "plz": "please",
    "rn": "right now",
    "alot": "a lot",
    "bby": "baby",
    "xfa": "por favor",
    "porfa": "por favor",
    "q": "que",
}

# Words patients misspell that carry a red flag: a word one edit away (OSA distance 1)
# from one of these, and not itself a real word listed in _REAL_WORDS, is read as it.
# Only words of six letters or more: shorter ones are one edit from too many others.
_CANONICAL: tuple[str, ...] = (
    "breathe",
    "breathing",
    "unconscious",
    "unresponsive",
    "seizure",
    "seizures",
    "suicidal",
    "suicide",
    "bleeding",
    "overdose",
    "overdosed",
    "poison",
    "poisoned",
    "allergic",
    "swallowed",
    "choking",
    "stroke",
    "emergency",
    "ambulance",
    "fainted",
    "collapsed",
    "vomiting",
    "convulsing",
    "swelling",
    "swollen",
    "pregnant",
    "confused",
    "numbness",
    "respirar",
    "embarazada",
    "inconsciente",
    "convulsiones",
    "emergencia",
    "sangrando",
    "desmayo",
)
_REAL_WORDS = frozenset(
    {"breath", "breaths", "strike", "stoke", "strode", "strove", "stroked", "poisons"}
    | {"bleeping", "bleeding", "breeding", "blending", "pleading", "reading", "beading"}
    | {"swallow", "swallows", "shallow", "chokings", "cooking", "coking", "chocking"}
    | {"confuses", "confuse", "allergy", "swelling", "swellings", "smelling", "spelling"}
    | {"respira", "respiras", "pregnancy", "dwelling", "shollen", "stolen", "seized"}
    | {"sangrado", "sangrada", "faintest", "fainter", "pointed", "painted", "stroker"}
    | {"prison", "tainted", "overdone", "selling", "shelling", "swilling", "strobe", "stoked"}
)


def _canonical(word: str) -> str | None:
    if len(word) < 6 or word in _REAL_WORDS or not word.isalpha():
        return None
    return next(
        (
            c
            for c in _CANONICAL
            # "breathed" and "breath" are words of their own, not typos of "breathe".
            if one_edit_apart(word, c) and not (word.startswith(c) or c.startswith(word))
        ),
        None,
    )


def _prepare(flat: str) -> str:
    """Spell out text-speak and fix one-edit misspellings of red-flag words."""
    words = []
    for word in flat.split():
        word = _TEXT_SPEAK.get(word, word)
        words.append(_canonical(word) or word)
    return " ".join(words)


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{pattern})\b")


_COMPILED: tuple[tuple[Concept, re.Pattern[str], re.Pattern[str]], ...] = tuple(
    (concept, _compile(en), _compile(es)) for concept, (en, es) in _PATTERNS.items()
)


def assess(flat: str) -> Assessment:
    """Read the normalised text (see intents._normalize) for concepts and rules."""
    text = _prepare(flat)
    found: dict[Concept, set[str]] = {}  # concept -> the languages whose words name it
    for concept, english, spanish in _COMPILED:
        languages = {lang for lang, p in (("en", english), ("es", spanish)) if p.search(text)}
        if languages:
            found[concept] = languages
    concepts = frozenset(found)
    rule = next((r for r in RED_FLAG_RULES if concepts.issuperset(r)), None)
    named = rule if rule is not None else tuple(c for c in found if c in CONCERNS)
    sets = {frozenset(found[c]) for c in named}
    only: frozenset[str] = next(iter(sets)) if len(sets) == 1 else frozenset()
    return Assessment(concepts, rule, next(iter(only)) if len(only) == 1 else None)
