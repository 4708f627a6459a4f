"""The rule layer: danger signals of the taxonomy, and whether each one is live.

A spaCy Matcher finds the signals (a toxin eaten, bleeding, not breathing, a seizure,
hit by a car, a dog fight, a bite, an escaped or missing pet, a threat, a weapon, feeling
unsafe, fire, gas, flooding, a person's medical emergency, a death, a bare cry for help)
in English and Spanish. Each signal then gets a context from the words around it:

- ``negated``: "she is NOT bleeding", "didn't eat any", "no sign of blood";
- ``hypothetical``: "what should I do if a dog I walk gets loose";
- ``figurative``: "this refund is killing me", "bleeding us dry";
- ``resolved``: "... but we found him, he's fine now, vet cleared him";
- ``past``: over and now about money or paperwork ("last month", "here is the invoice");
- ``active``: none of these; an active signal makes the message critical.

The patterns are data below, one table per concern, so a reviewer can read them.
"""

from dataclasses import dataclass

from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span

SPAN_KEY = "danger"
CONTEXTS = ("active", "negated", "hypothetical", "figurative", "resolved", "past")

PETS = ["dog", "dogs", "puppy", "pup", "pups", "cat", "cats", "kitten", "kitty", "pet", "pets", "rabbit", "bunny",
        "bird", "parrot", "horse", "pony", "hamster", "ferret", "lizard", "snake", "tortoise", "turtle", "doggy",
        "doggo", "pooch", "husky", "lab", "puppies", "kittens", "tortoise", "guinea", "chickens", "hens", "perro", "perrito", "perra", "perrita", "gato",
        "gatito", "gata", "gatita", "mascota", "conejo", "cachorro", "cobaya", "hámster", "tortuga", "loro", "pájaro", "perico", "gallinas"]
OBJECT_PRONOUNS = ["him", "her", "them", "it", "lo", "la", "los", "las"]
INGEST = ["ate", "eaten", "eat", "eats", "eating", "swallowed", "swallow", "swallowing", "chewed", "chewing",
          "chew", "licked", "ingested", "consumed", "gobbled", "scarfed", "into", "comió", "comio", "tragó",
          "trago", "lamió", "lamio", "masticó", "mastico", "ingirió"]
TOXINS = ["chocolate", "choc", "cocoa", "grape", "grapes", "raisin", "raisins", "xylitol", "zylitol", "xilitol",
          "gum", "ibuprofen", "advil", "motrin", "tylenol", "acetaminophen", "paracetamol", "aspirin", "naproxen",
          "aleve", "pill", "pills", "tablet", "tablets", "medication", "medications", "meds", "medicine",
          "adderall", "antifreeze", "poison", "bait", "lily", "lilies", "onion", "onions", "garlic", "weed",
          "edible", "edibles", "marijuana", "cannabis", "thc", "bleach", "detergent", "fertilizer", "pesticide",
          "insecticide", "mushroom", "mushrooms", "pellets", "rodenticide", "uvas", "uva", "pasas", "chicle",
          "pastillas", "pastilla", "medicamento", "medicamentos", "medicina", "veneno", "cebolla", "ajo",
          "anticongelante", "lejía", "cloro"]
VEHICLES = ["car", "truck", "vehicle", "van", "bus", "bike", "motorcycle", "suv", "cab", "taxi", "carro", "coche",
            "auto", "camión", "camion", "moto"]
SOMEONE = ["someone", "somebody", "man", "guy", "stranger", "person", "men", "people", "dude", "woman", "alguien",
           "hombre", "tipo", "señor"]
LEASH = ["collar", "harness", "leash", "lead", "correa", "arnés", "arnes", "collar"]


def _any(words: list[str]) -> dict:
    return {"LOWER": {"IN": words}}


GAP = {"OP": "{0,6}"}  # up to six words between the parts of a signal
SHORT_GAP = {"OP": "{0,3}"}


@dataclass(frozen=True)
class Signal:
    name: str
    category: str  # the category it usually points to (a hint shown as evidence)
    patterns: list  # Matcher token patterns, or phrases (str) tokenized like the text
    negation_inside: bool = False  # the pattern itself says "not" ("not breathing")

    @property
    def strong(self) -> bool:
        return self.name not in WEAK_SIGNALS


# An active strong signal makes a message critical by itself; a weak one (a bite, blood,
# a death, a fire: often reported after the fact) only when the models also find critical
# plausible (see assist/triage/pipeline.py).
WEAK_SIGNALS = frozenset({"bleeding", "injury", "dog_fight", "bite", "fire", "flood", "death", "medical_person"})


SIGNALS = [
    Signal("toxin", "pet_health", [
        [_any(INGEST), GAP, _any(TOXINS)],
        [_any(TOXINS), GAP, _any(INGEST)],
        [_any(["poisoned", "poisoning", "envenenado", "envenenada", "envenenamiento", "intoxicado",
               "intoxicada"])],
        "poison control", "pet poison",
    ]),
    Signal("bleeding", "pet_health", [
        [_any(["bleeding", "bleed", "bleeds", "bled", "blood", "bloody", "bleating", "bleedin", "gushing",
               "sangrando", "sangra", "sangre", "sangró", "sangro", "sangrado"])],
    ]),
    Signal("heavy_bleeding", "pet_health", [
        [_any(["vomited", "vomiting", "vomits", "coughing", "coughed", "throwing", "threw", "peeing", "pooping"]),
         {"LOWER": "up", "OP": "?"}, {"LOWER": "blood"}],
        [{"LOWER": "blood"}, {"LOWER": "in"}, {"OP": "?"}, _any(["vomit", "sick", "pee", "urine"])],
        [_any(["won't", "wont", "will"]), {"LOWER": {"IN": ["n't", "not"]}, "OP": "?"}, {"LOWER": "stop"},
         {"LOWER": "bleeding"}],
        [{"LOWER": "bleeding"}, _any(["heavily", "badly", "everywhere", "a lot", "profusely", "lots"])],
        "lot of blood", "so much blood", "pool of blood", "blood everywhere", "sangra mucho", "mucha sangre",
        "vomitando sangre", "vomitó sangre",
    ]),
    Signal("not_breathing", "pet_health", [
        [_any(["not", "n't", "nt", "stopped", "barely", "trouble", "difficulty", "struggling", "hard", "cannot",
               "labored", "laboured"]), {"LOWER": "to", "OP": "?"}, _any(["breathing", "breathe"])],
        [_any(["gasping", "choking", "choked", "suffocating", "asfixia", "ahogando", "ahoga", "atragantó",
               "atraganto"])],
        "turning blue", "blue gums", "gums are blue",
        "no respira", "no puede respirar", "dejó de respirar", "dejo de respirar", "stopped breathing",
        "respirando con la boca abierta", "open mouth breathing", "open-mouth breathing", "panting heavily",
    ], negation_inside=True),
    Signal("collapse", "pet_health", [
        [_any(PETS + ["he", "she", "they", "sitter", "walker", "owner"]), {"OP": "{0,2}"},
         _any(["collapsed", "collapsing", "colapsó", "colapso"])],
        [_any(["unconscious", "unresponsive", "fainted", "desmayó", "desmayo", "inconsciente"])],
        "passed out", "not moving", "won't wake", "wont wake",
        "can't stand", "cant stand up", "no se mueve", "no reacciona",
    ], negation_inside=True),
    Signal("seizure", "pet_health", [
        [_any(["seizure", "seizures", "seizing", "convulsing", "convulsion", "convulsions", "convulsiones",
               "convulsionando", "convulsión"])],
    ]),
    Signal("hit_by_vehicle", "pet_health", [
        [_any(["hit", "struck", "clipped", "knocked"]), SHORT_GAP, _any(VEHICLES)],
        "ran over", "run over", "got hit",
        [_any(["atropelló", "atropello", "atropellado", "atropellada", "atropellaron"])],
    ]),
    Signal("injury", "pet_health", [
        [_any(["broken", "broke", "fractured", "dislocated"]), SHORT_GAP,
         _any(["leg", "legs", "paw", "hip", "jaw", "tail", "bone", "pata", "hueso"])],
        [_any(["injured", "injury", "wounded", "wound", "wounds", "gash", "herido", "herida", "lastimado",
               "lastimada"])],
        [_any(["is", "got", "was", "badly", "seriously", "very", "really", "'s", "been"]), {"LOWER": "hurt"}],
        "deep cut", "heat stroke", [_any(["heatstroke", "overheating", "bloat", "bloated"])],
        "pata rota",
    ]),
    Signal("dog_fight", "bite_attack", [
        [_any(["dog", "dogs"]), _any(["fight", "fighting", "fought"])],
        [_any(["dogfight", "attacked", "attacking", "mauled", "mauling", "atacó", "ataco", "atacado", "atacada",
               "atacaron", "pelea", "peleando"])],
        [_any(["got", "get", "were", "was"]), _any(["in", "into"]), {"LOWER": "a", "OP": "?"},
         _any(["fight", "scrap", "scuffle"])],
        [_any(["went", "going", "goes", "lunged", "charged"]), {"LOWER": "for"},
         _any(PETS + ["someone", "somebody", "me", "him", "her", "them", "my", "the", "a"])],
        "attack in progress", "is attacking",
    ]),
    Signal("left_alone", "no_show", [
        [_any(["without", "no", "sin", "out", "ran"]), {"LOWER": "of", "OP": "?"},
         _any(["water", "food", "agua", "comida", "insulin", "insulina", "meds", "medication"])],
        [_any(["needs", "need", "necesita", "missed", "due"]), {"OP": "{0,2}"},
         _any(["insulin", "insulina", "medication", "meds", "medicine", "medicina", "medicamento", "injection"])],
        "nadie ha ido", "nadie ha venido", "no ha ido nadie", "no ha venido nadie", "not been fed", "haven't been fed", "havent been fed", "hasn't been fed", "no tienen agua",
        "no han comido", "alone all day", "solos todo el día", "solos todo el dia", "todo el día sin",
    ]),
    Signal("bite", "bite_attack", [
        [_any(["bit", "bitten", "bite", "bites", "biting", "mordió", "mordio", "mordida", "mordido", "mordiendo",
               "muerde", "mordieron"])],
    ]),
    Signal("escaped", "lost_pet", [
        [_any(["got", "gets"]), {"LOWER": "out"}],
        [_any(["ran", "run", "runs", "running", "took", "bolted"]), _any(["off", "away"])],
        [_any(["escaped", "escape", "escaping", "bolted", "vanished", "disappeared", "escapó", "escapo",
               "salió", "perdió", "perdio", "desapareció", "desaparecio", "desaparecido", "desaparecida",
               "perdido", "perdida", "extraviado", "extraviada"])],
        [{"LOWER": {"IN": ["slipped", "slip", "backed", "wriggled", "pulled"]}}, GAP, _any(LEASH)],
        [_any(["slipped", "snuck", "darted", "squeezed"]), _any(["out", "through", "past"])],
        "jumped the fence", "jumped over the fence", "dug under",
        [{"LOWER": {"IN": PETS + ["he", "she", "they"]}}, _any(["is", "went", "gone", "been", "are", "was", "has",
                                                                 "'s", "have"]), {"OP": "?"}, {"LOWER": "missing"}],
        [{"IS_TITLE": True, "IS_SENT_START": False}, _any(["is", "went", "has", "'s"]), {"LOWER": "been", "OP": "?"},
         {"LOWER": "missing"}],
        [{"LOWER": "missing"}, _any(PETS)],
        [{"LOWER": "lost"}, {"LOWER": {"IN": ["my", "the", "our", "your", "his", "her", "their"]}, "OP": "?"},
         _any(PETS)],
        [_any(["ca", "can", "could"]), _any(["n't", "nt", "not"]), {"LOWER": "find"}, {"OP": "?"},
         _any(PETS + ["him", "her", "them"])],
        [{"LOWER": "cannot"}, {"LOWER": "find"}, {"OP": "?"}, _any(PETS + ["him", "her", "them"])],
        [_any(PETS + ["he", "she"]), _any(["is", "'s", "has", "are"]), {"LOWER": "been", "OP": "?"}, {"LOWER": "gone"}],
        [_any(PETS), {"LOWER": "gone"}],
        "no lo veo", "no la veo", "por ningún lado", "por ningun lado",
        [_any(["got", "gets", "get", "getting", "is", "broke", "running", "ran"]), {"LOWER": "loose"}],
        "on the loose",
        [{"LOWER": "no"}, {"LOWER": "sign"}, {"LOWER": "of"},
         {"LOWER": {"IN": ["the", "my", "our", "her", "his", "their"]}, "OP": "?"}, _any(PETS + ["him", "her", "them"])],
        [{"LOWER": "no"}, {"LOWER": "sign"}, {"LOWER": "of"}, {"IS_TITLE": True}],
        "no lo encuentro", "no la encuentro", "no los encuentro",
        "no lo encontramos", "no la encontramos", "se salió", "se salio",
    ], negation_inside=True),
    Signal("threat", "personal_safety", [
        [_any(["threatened", "threatening", "threaten", "threat", "threats", "amenazó", "amenazo", "amenaza",
               "amenazando", "amenazas", "amenazaron"])],
        [_any(["going", "gonna"]), {"LOWER": "to", "OP": "?"}, _any(["hurt", "kill", "beat", "shoot", "stab"])],
        [_any(["kill", "hurt", "shoot", "stab"]), _any(["you", "me", "us", "her", "him"])],
        "me va a matar", "me quiere matar",
    ]),
    Signal("weapon", "personal_safety", [
        [_any(["gun", "guns", "knife", "knives", "weapon", "weapons", "firearm", "pistol", "rifle", "shotgun",
               "machete", "arma", "armas", "pistola", "cuchillo", "navaja"])],
    ]),
    Signal("unsafe", "personal_safety", [
        [_any(["unsafe", "intruder", "intruders", "stalking", "stalker", "assaulted", "assault", "groped",
               "punched", "strangled", "choked"])],
        [_any(["not", "don't", "dont", "n't", "nt"]), {"LOWER": "feel", "OP": "?"}, {"LOWER": "safe"}],
        "scared for my life", "fear for my life", "afraid for my life",
        "afraid for my safety", "locked me in", "won't let me leave",
        "wont let me leave", "following me", "followed me", "grabbed me",
        "touched me", "attacked me", "hit me", "pushed me", "broke in",
        "breaking in", "break in", "someone is in the house",
        "someone in the house", "no me siento segura", "no me siento seguro",
        [_any(SOMEONE), _any(["in", "inside"]), _any(["the", "my", "our", "her", "his"]),
         _any(["house", "kitchen", "garden", "living", "bedroom", "shed", "flat", "apartment", "home", "room", "yard",
               "backyard", "hallway", "basement", "attic", "casa", "cocina", "jardín", "jardin"])],
        [_any(SOMEONE), {"LOWER": {"IN": ["is", "'s", "was", "just", "keeps"]}, "OP": "{1,2}"},
         _any(["in", "inside", "upstairs", "downstairs", "following", "followed", "shouting", "screaming", "climbing",
               "banging", "knocking", "walking", "hiding", "trying", "exposing", "shoved", "grabbed", "let",
               "broke", "smashed", "kicking", "entering", "entered", "dentro", "adentro", "intentando", "tocando",
               "siguió", "siguio", "entró", "entro"])],
        [_any(["hear", "heard", "saw", "see"]), _any(SOMEONE)],
        [_any(["hiding", "locked", "barricaded", "escondida", "escondido", "encerrada"]), {"OP": "{0,3}"},
         _any(["bathroom", "bedroom", "room", "car", "closet", "baño", "cuarto", "carro", "coche"])],
        [_any(["threw", "throwing", "smashed", "smashing", "kicking", "banging", "punching", "shoved", "shoving"]),
         {"OP": "{0,3}"}, _any(["door", "window", "wall", "walls", "glass", "brick", "me", "her", "ground", "puerta"])],
        [_any(["following", "followed"]), _any(["me", "her", "him"])],
        [{"LOWER": "parked"}, _any(["across", "outside", "opposite", "in"])],
        [_any(["sitting", "waiting", "standing"]), _any(["outside"]), _any(["my", "the", "our"]),
         _any(["house", "home", "flat", "door", "building"])],
        "watching my house", "watching the house", "scared to stay", "afraid to stay", "know you're away",
        "know youre away", "know you are away", "with a bat", "exposing himself", "trying to kiss", "know where you live", "know where i live",
        "drunk and", "called the police", "calling the police", "call the police", "police are",
        "tengo miedo", "me siguió", "me siguio", "me agarró",
        "me golpeó", "alguien entró", "entraron a la casa",
    ], negation_inside=True),
    Signal("fire", "property_damage", [
        [_any(["fire", "flames", "smoke", "burning", "incendio", "fuego", "humo", "llamas"])],
    ]),
    Signal("gas", "personal_safety", [
        "gas leak", "smell gas", "smells like gas", "smell of gas",
        "carbon monoxide", "fuga de gas", "huele a gas",
    ]),
    Signal("flood", "property_damage", [
        [_any(["flooding", "flooded", "inundación", "inundacion", "inundado", "inundada"])],
        "burst pipe", "pipe burst", "water everywhere", "ceiling collapsed",
        "ceiling fell", "ceiling caved",
    ]),
    Signal("medical_person", "general", [
        [_any(["terrible", "severe", "lot", "awful", "extreme", "mucho"]), {"LOWER": "of", "OP": "?"},
         _any(["pain", "pains", "dolor"])],
        "chest pains", "can't move", "cant move", "cannot move", "knocked down", "knocked over by",
        [_any(["lying", "laying", "collapsed"]), _any(["on", "in"]), {"LOWER": "the"},
         _any(["ground", "floor", "pavement", "road", "street"])],
        [_any(["appendix", "alérgica", "alérgico", "alergica", "alergico"])],
        [_any(["found"]), _any(["her", "him", "them"]), {"OP": "{0,2}"}, _any(["floor", "ground"])],
        "throat is closing", "cerrando la garganta", "duele mucho", "dolor de pecho", "bee sting", "stung by",
        "me picó", "me pico",
        "allergic reaction", [_any(["anaphylaxis", "anaphylactic", "epipen", "ambulance", "911",
                                             "ambulancia", "stroke"])],
        "epi pen", "heart attack", "chest pain", "hit my head",
        "hit her head", "hit his head", "fell down", "fell off",
        [_any(["broke", "broken"]), _any(["my", "her", "his"]), _any(["arm", "leg", "ankle", "wrist", "hip"])],
        [_any(["i'm", "im", "i"]), {"LOWER": {"IN": ["am", "'m"]}, "OP": "?"}, _any(["hurt", "injured"])],
        "me caí", "me cai", "reacción alérgica", "reaccion alergica",
    ]),
    Signal("emergency_services", "general", [
        [_any(["911", "999", "112", "ambulance", "paramedics", "ambulancia", "paramédicos"])],
        "emergency room", "urgencias",
    ]),
    Signal("death", "pet_health", [
        [_any(["died", "dead", "dying", "killed", "murió", "murio", "muerto", "muerta", "falleció", "fallecio"])],
        "passed away", "put down", "se murió", "se murio",
    ]),
]

# Whole messages that are a bare cry for help (the taxonomy: critical / general).
HELP_WORDS = {"help", "sos", "ayuda", "auxilio", "socorro", "ayúdame", "ayudame", "ayudenme", "ayúdenme"}
SHORT_CRY = 6  # tokens: a message this short that only asks for help is a cry for help
# Words that may stand beside "help" in a bare cry ("pls help me now"); "thank you for your help" is none.
CRY_FILLERS = {"please", "pls", "plz", "me", "us", "now", "i", "need", "someone", "somebody", "anyone", "por",
               "favor", "hola", "urgent", "asap", "quick", "fast", "ahora", "necesito", "alguien", "ya", "we",
               "hello", "hi", "hey"}
CRIES = {"help", "help!", "help me", "please help", "help please", "sos", "ayuda", "auxilio", "ayúdame",
         "ayudame", "help us", "emergency", "urgent help"}

NEGATIONS = {"not", "no", "never", "n't", "nt", "without", "nothing", "none", "nobody", "neither", "nor",
             "isnt", "wasnt", "didnt", "doesnt", "hasnt", "havent", "dont", "cant", "wont", "arent", "werent",
             "nunca", "sin", "nadie", "ningún", "ningun", "ninguna", "ni", "nada"}
CLAUSE_BREAKS = {"but", "however", "although", "though", "yet", ",", ";", ".", "!", "?", "pero", "aunque", "-",
                 "and", "y"}
NEGATION_WINDOW = 3  # tokens before a signal that may negate it

HYPOTHETICAL_CUES = [
    "what if", "what happens if", "what should i do if", "what do i do if", "what do we do if",
    "what should we do if", "what would happen if", "what would you do if", "what is the procedure if",
    "what's the procedure if", "what is the policy if", "what's the policy if", "policy if", "policy for",
    "policy on", "procedure if", "in case", "just in case", "hypothetically", "if ever", "if a dog",
    "if a cat", "if a pet", "if one of", "if my dog ever", "if the dog ever", "if it ever", "if he ever",
    "if she ever", "should i worry if", "is it dangerous", "is it safe", "is chocolate", "are grapes",
    "can dogs", "can cats", "how dangerous is", "how toxic", "is it true that", "asking for a friend",
    "qué hago si", "que hago si", "qué pasa si", "que pasa si", "en caso de", "si alguna vez", "si un perro",
    "si mi perro", "qué debo hacer si", "que debo hacer si", "would you cover", "do you cover", "is there a policy",
    "what are the rules", "how do i report", "how do you handle", "if a sitter", "if an owner", "if a walker",
    "if a client", "if the sitter", "if the owner", "if the walker", "if someone", "if anyone", "how long can",
    "what to do if", "qué hacer si", "que hacer si",
]
RESOLUTION_CUES = [
    "fine now", "ok now", "okay now", "all good", "all fine", "is fine", "'s fine", "are fine", "is ok",
    "is okay", "'s ok", "'s okay", "doing fine", "doing well", "doing great", "doing ok", "doing okay",
    "vet cleared", "cleared him", "cleared her", "vet said he", "vet said she", "vet says he", "vet says she",
    "safe now", "safe and sound", "recovered", "recovering", "false alarm", "turned up", "came back",
    "no harm done", "crisis averted", "all sorted", "resolved", "please close", "can close", "close the case",
    "close this", "no longer", "ya está bien", "ya esta bien", "lo encontramos", "la encontramos",
    "ya apareció", "ya aparecio", "está bien ahora", "esta bien ahora", "falsa alarma", "ya regresó",
    "ya regreso", "ya volvió", "ya volvio", "todo bien", "sano y salvo", "sana y salva", "put it out",
    "put out the", "it's out", "its out", "is out now", "healed", "healing", "ya sanó", "ya sano", "la encontró",
    "lo encontró", "la encontro", "lo encontro", "apareció", "aparecio", "la devolvió", "lo devolvió", "ya lo apagué",
    "ya lo apague", "ya no hay",
]
# Resolve only an escaped or missing pet ("back inside" says nothing of a bite).
FOUND_CUES = [
    "found him", "found her", "found them", "found it", "we found", "i found", "was found", "been found",
    "back home", "home safe", "caught her", "caught him", "got her back", "got him back", "have him back",
    "have her back", "is home", "are home", "back inside", "back in the house", "back on the lead", "back on leash",
    "la encontró", "lo encontró", "la encontro", "lo encontro", "apareció", "aparecio", "la devolvió",
    "lo devolvió", "lo encontramos", "la encontramos", "ya apareció", "ya aparecio", "ya regresó", "ya volvió",
]
# Resolve only bleeding.
STOPPED_CUES = ["stopped bleeding", "bleeding stopped", "bleeding has stopped", "bleeding's stopped",
                "dejó de sangrar", "dejo de sangrar", "ya no sangra"]
PAST_CUES = [
    "last week", "last month", "last year", "last weekend", "last time", "last stay", "last summer",
    "last spring", "last winter", "last fall", "last autumn", "weeks ago", "months ago", "years ago",
    "days ago", "a while ago", "back in", "earlier this month", "earlier this year", "for days", "for weeks",
    "for months", "for two days", "for three days", "for a few days", "for several days", "for over a week",
    "for a week", "since last", "previous booking", "previous stay", "the other day", "la semana pasada",
    "el mes pasado", "el año pasado", "hace unos días", "hace días", "hace semanas", "hace meses",
    "hace dos semanas", "hace tres días",
]
PAPERWORK_CUES = ["invoice", "invoices", "receipt", "receipts", "reimburse", "reimbursed", "reimbursement",
                  "claim", "claims", "refund", "refunded", "guarantee", "paperwork", "itemised", "itemized",
                  "estimate", "factura", "facturas", "reembolso", "reclamo", "reclamación", "recibo"]
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
          "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
          "noviembre", "diciembre", "christmas", "easter", "navidad"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "mon", "tue", "tues",
            "wed", "thu", "thur", "thurs", "fri", "sat", "sun", "weekend", "lunes", "martes", "miércoles",
            "miercoles", "jueves", "viernes", "sábado", "sabado", "domingo"]
NUMBER_WORDS = ["a", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
                "few", "several", "couple", "un", "una", "dos", "tres", "cuatro", "cinco", "seis", "siete", "unos",
                "unas", "varios", "varias"]
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
            "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth",
            "nineteenth", "twentieth", "twenty", "thirtieth", "thirty"]
DAY_OF_MONTH = {"TEXT": {"REGEX": r"^\d{1,2}(st|nd|rd|th)?$"}}
# When it happened, if it was days or more ago: dates, weekdays, "3 weeks", "day 6".
TIME_PATTERNS = [
    [{"LOWER": {"IN": NUMBER_WORDS}, "OP": "?"}, {"LIKE_NUM": True, "OP": "?"}, {"LOWER": "of", "OP": "?"},
     {"LOWER": {"IN": ["days", "weeks", "months", "years", "días", "dias", "semanas", "meses", "años"]}}],
    [{"LOWER": {"IN": ["day", "día", "dia", "week", "semana"]}}, {"LIKE_NUM": True}],
    [{"LOWER": {"IN": ["on", "since", "el", "desde", "in", "over", "en"]}}, {"LOWER": "the", "OP": "?"},
     {"LOWER": {"IN": MONTHS + WEEKDAYS + ORDINALS}}],
    [{"LOWER": {"IN": ["on", "since", "el", "desde", "from"]}}, {"LOWER": "the", "OP": "?"}, DAY_OF_MONTH],
    [DAY_OF_MONTH, {"LOWER": "de", "OP": "?"}, {"LOWER": {"IN": MONTHS}}],
    [{"LOWER": {"IN": MONTHS}}, DAY_OF_MONTH],
    [{"LOWER": {"IN": ["last", "pasado", "pasada"]}}, {"LOWER": {"IN": WEEKDAYS + MONTHS}}],
]
FOLLOW_UP_SUBJECT = {"re", "fw", "fwd", "aw", "rv"}  # "Re:" ...: a reply's subject names an earlier incident
NOW_CUES = {"now", "right", "currently", "still", "ahora", "todavía", "todavia", "sigue", "aún"}
FIGURATIVE = [
    "killing me", "kills me", "killing us", "killed me", "dying to", "i'm dying", "im dying", "dying here",
    "dead serious", "dead tired", "dead battery", "phone died", "phone is dead", "battery died", "to die for",
    "bleeding money", "bleeding me dry", "bleed me dry", "bleeding us dry", "bleeding cash", "account is bleeding",
    "bank account is bleeding", "inbox is on fire", "inbox on fire", "on fire today", "could murder",
    "murder a", "kill for a", "could kill for", "killing it", "gave me a heart attack", "nearly had a heart attack",
    "almost had a heart attack", "heart attack when", "scared to death", "bored to death", "worried to death",
    "sick to death", "to death", "drop dead", "over my dead body", "bite the bullet", "bite my tongue",
    "bit my tongue", "bites the dust", "a bit", "a little bit", "bit of", "bit more", "bit late", "bit worried",
    "bite to eat", "bloody hell", "bloody ridiculous", "bloody joke", "bloody nightmare", "bloody useless",
    "bloody app", "bloody fee", "bloody charge", "felt attacked", "feel attacked", "feeling attacked",
    "threatening to leave", "threatened to leave", "threatening to post", "threatened to post",
    "threatening to give", "threatened to give", "threatening to write", "threatened to write",
    "threatening to report", "threatened to report", "threatening to sue", "threatened to sue",
    "threatening to cancel", "threatened to cancel", "going to kill me about", "gonna kill me about",
    "going to kill me when", "gonna kill me when", "going to kill me lol", "gonna kill me lol", "will kill me", "threatening a bad", "threatened a bad",
    "threatening me with a bad", "threatened me with a bad", "threatening me with a 1", "threatening a one",
    "hurt my feelings", "hurt by", "feelings hurt", "hurts my", "got out of the car", "got out of bed",
    "get out of bed", "got out of work", "get out of work", "got out of the shower", "get out of the way",
    "get out of here", "ran off my feet", "run off my feet", "lost my mind", "losing my mind", "lost my patience",
    "fire me", "fired", "ceasefire", "smoke alarm battery", "blood pressure", "blood boiling", "my blood boil",
    "makes my blood", "bad blood", "me está matando", "me esta matando", "me muero de", "me mata",
    "pet peeve", "missing a payment", "missing payment", "missing money", "missing funds", "missing payout",
    "missing refund", "missing invoice", "missing receipt",
]


class DangerRules:
    """Mark danger signals in doc.spans["danger"], each with a context (span._.danger_context)."""

    def __init__(self, nlp: Language, name: str = "danger_rules"):
        self.name = name
        # One matcher per signal, run only when the text has one of the signal's anchor words:
        # the Matcher checks set predicates in Python, and most messages name few signals.
        self.matchers: list[tuple[frozenset | None, Matcher]] = []
        self.negation_inside = set()
        for signal in SIGNALS:
            patterns = [_pattern(nlp, p) for p in signal.patterns]
            matcher = Matcher(nlp.vocab)
            matcher.add(signal.name, patterns)
            self.matchers.append((_anchors(patterns), matcher))
            if signal.negation_inside:
                self.negation_inside.add(signal.name)
        self.categories = {s.name: s.category for s in SIGNALS}
        self.times = Matcher(nlp.vocab)
        self.times.add("past", TIME_PATTERNS)
        self.cues = PhraseMatcher(nlp.vocab, attr="LOWER")
        for label, phrases in (("hypothetical", HYPOTHETICAL_CUES), ("resolved", RESOLUTION_CUES),
                               ("found", FOUND_CUES), ("stopped", STOPPED_CUES),
                               ("past", PAST_CUES), ("paperwork", PAPERWORK_CUES), ("figurative", FIGURATIVE)):
            self.cues.add(label, [nlp.make_doc(p) for p in phrases])

    def __call__(self, doc: Doc) -> Doc:
        strings = doc.vocab.strings
        lowers = [strings[key] for key in doc.to_array("LOWER").tolist()]
        words = set(lowers)
        matches = []
        for anchors, matcher in self.matchers:
            if anchors is None:
                matches += matcher(doc, as_spans=True)
            elif words & anchors:
                # Match only around the anchor words: the Matcher's cost grows with the tokens it walks.
                for start, end in _windows([i for i, w in enumerate(lowers) if w in anchors], len(doc)):
                    matches += matcher(doc[start:end], as_spans=True)
        spans = _longest_first(matches)
        if len(doc) <= 3 * SHORT_CRY:  # a cry for help is a short message (punctuation aside)
            tokens = [t for t in doc if not (t.is_punct or t.is_space)]
            said = {t.lower_ for t in tokens}
            if len(tokens) <= SHORT_CRY and (doc.text.strip().lower().strip(".!¡ ") in CRIES
                                             or (said & HELP_WORDS and said <= HELP_WORDS | CRY_FILLERS)):
                spans.append(Span(doc, 0, len(doc), label="cry_for_help"))
        doc.spans[SPAN_KEY] = spans
        if not spans:
            return doc  # no signal: no context to weigh
        cues: dict[str, list[Span]] = {}
        for span in self.cues(doc, as_spans=True):
            cues.setdefault(span.label_, []).append(span)
        when = [i for i, w in enumerate(lowers) if w in TIME_WORDS or w[:1].isdigit()]
        for start, end in _windows(when, len(doc), radius=TIME_WINDOW):
            cues.setdefault("past", []).extend(t for t in self.times(doc[start:end], as_spans=True)
                                               if not _clock_time(t))
        if len(lowers) > 1 and lowers[0] in FOLLOW_UP_SUBJECT and lowers[1] == ":":
            first_line = doc.text.split("\n", 1)[0]
            cues["subject"] = [doc.char_span(0, len(first_line), alignment_mode="expand")]
        sentences = _sentence_bounds(doc)
        for span in doc.spans[SPAN_KEY]:
            span._.danger_context = self._context(doc, span, cues, lowers, sentences[span.start])
        return doc

    def category_hint(self, span: Span) -> str:
        return self.categories.get(span.label_, "general")

    def _context(self, doc: Doc, span: Span, cues: dict[str, list[Span]], lowers: list[str],
                 sentence: tuple[int, int]) -> str:
        if any(_overlaps(span, cue) for cue in cues.get("figurative", ())):
            return "figurative"
        if span.label_ not in self.negation_inside and _negated(doc, span):
            return "negated"
        if any(cue.end <= span.start and cue.start >= sentence[0] for cue in cues.get("hypothetical", ())):
            return "hypothetical"
        resolving = cues.get("resolved", []) + cues.get({"escaped": "found", "bleeding": "stopped"}.get(span.label_), [])
        if any(cue.start >= span.start or _overlaps(span, cue) for cue in resolving):
            return "resolved"
        if any(_overlaps(span, cue) for cue in cues.get("subject", ())):
            return "past"
        says_now = any(word in NOW_CUES for word in lowers[sentence[0]:sentence[1]])
        # Pets left without water or food only get worse with time: a duration makes it no past event.
        if span.label_ != "left_alone" and (cues.get("past") or (cues.get("paperwork") and not says_now)):
            return "past"
        return "active"


def is_strong(signal: str) -> bool:
    """Whether an active signal of this name makes a message critical by itself."""
    return signal not in WEAK_SIGNALS


# Words too frequent in this domain's messages to be worth prefiltering on.
COMMON = frozenset({"is", "was", "are", "the", "a", "an", "my", "our", "his", "her", "got", "get", "to", "in", "on",
                    "for", "of", "i", "he", "she", "it", "they", "me", "him", "them", "no", "not", "n't", "nt",
                    "can", "ca", "could", "'s", "has", "been", "just", "with", "out", "off", "away", "at", "you",
                    "us", "up", "man", "people", "person", "woman", "see", "saw", *PETS})
TIME_WORDS = frozenset(["days", "weeks", "months", "years", "día", "días", "dias", "semanas", "meses", "años", "day",
                        "dia", "week", "semana", "last", "pasado", "pasada"] + MONTHS + WEEKDAYS + ORDINALS)


def _anchors(patterns: list[list[dict]]) -> frozenset | None:
    """Words one of which every match must contain (None: a pattern has no word it must contain).

    Each pattern contributes the word set of one token it cannot match without: the one with
    the fewest domain-common words, then the smallest.
    """
    anchors: set[str] = set()
    for pattern in patterns:
        choices = []
        for token in pattern:
            if token.get("OP") not in (None, "+") or "LOWER" not in token:
                continue
            value = token["LOWER"]
            words = set(value["IN"]) if isinstance(value, dict) else {value}
            choices.append((len(words & COMMON), len(words), sorted(words)))
        if not choices:
            return None
        anchors |= set(min(choices)[2])
    return frozenset(anchors)


def _pattern(nlp: Language, pattern) -> list[dict]:
    """A phrase becomes the token pattern of its words as the tokenizer splits them ("can't" -> ca, n't)."""
    if isinstance(pattern, str):
        return [{"LOWER": token.lower_} for token in nlp.make_doc(pattern)]
    return pattern


WINDOW = 12  # tokens on each side of an anchor word that a signal's match can reach
TIME_WINDOW = 4  # the same for a date or a duration


def _windows(positions: list[int], size: int, radius: int = WINDOW) -> list[tuple[int, int]]:
    """Merge [anchor - radius, anchor + radius] ranges into disjoint token ranges of the doc."""
    merged: list[list[int]] = []
    for i in positions:
        start, end = max(0, i - radius), min(size, i + radius + 1)
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _clock_time(span: Span) -> bool:
    """Whether a date-like match is no date: a time of day ("since 7 am") or an age ("80 years old")."""
    after = span.doc[span.end] if span.end < len(span.doc) else None
    return after is not None and after.lower_ in {"am", "pm", "a.m.", "p.m.", ":", "o'clock", "hrs", "h", "old"}


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def _longest_first(spans: list[Span]) -> list[Span]:
    """Keep the longest of overlapping matches of one signal; different signals may overlap."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (-(s.end - s.start), s.start)):
        if not any(k.label_ == span.label_ and _overlaps(k, span) for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: (s.start, s.end))


def _sentence_bounds(doc: Doc) -> list[tuple[int, int]]:
    """For each token, the (start, end) of its sentence; one sentence when none were set."""
    starts = [i for i, flag in enumerate(doc.to_array("SENT_START").tolist()) if flag == 1 or i == 0]
    bounds = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(doc)
        bounds += [(start, end)] * (end - start)
    return bounds


def _negated(doc: Doc, span: Span) -> bool:
    """Whether a negation word stands just before span, in the same clause."""
    for i in range(span.start - 1, max(span.start - 1 - NEGATION_WINDOW, -1), -1):
        token = doc[i]
        if token.lower_ in CLAUSE_BREAKS or token.is_sent_end:
            return False
        if token.lower_ in NEGATIONS or token.norm_ == "not":
            return True
    return False


if not Span.has_extension("danger_context"):
    Span.set_extension("danger_context", default=None)


@Language.factory("danger_rules")
def make_danger_rules(nlp: Language, name: str) -> DangerRules:
    return DangerRules(nlp, name)
