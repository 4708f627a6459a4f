"""The taxonomy's labels (../shared/taxonomy.md): the only ones triage may produce."""

from typing import Literal, get_args

Urgency = Literal["critical", "high", "normal", "low"]  # most urgent first
Emotion = Literal["anger", "fear", "sadness", "joy", "neutral"]
Category = Literal["pet_health", "lost_pet", "bite_attack", "personal_safety", "property_damage", "no_show",
                   "vet_claim", "payment", "account", "general"]
URGENCY: tuple[str, ...] = get_args(Urgency)
EMOTION: tuple[str, ...] = get_args(Emotion)
CATEGORY: tuple[str, ...] = get_args(Category)
LABELS = {"urgency": URGENCY, "emotion": EMOTION, "category": CATEGORY}

# Routing queues of the default playbooks.
Queue = Literal["emergency", "safety", "claims", "support"]
QUEUES: tuple[str, ...] = get_args(Queue)

# How people read the categories (the taxonomy's wording), for charts and reports.
CATEGORY_NAMES = {"pet_health": "Pet health", "lost_pet": "Lost pet", "bite_attack": "Bite or attack",
                  "personal_safety": "Personal safety", "property_damage": "Property damage", "no_show": "No-show",
                  "vet_claim": "Vet claim", "payment": "Payment", "account": "Account", "general": "General"}
