"""The taxonomy's labels (../shared/taxonomy.md): the only ones triage may produce."""

URGENCY = ("critical", "high", "normal", "low")  # most urgent first
EMOTION = ("anger", "fear", "sadness", "joy", "neutral")
CATEGORY = ("pet_health", "lost_pet", "bite_attack", "personal_safety", "property_damage", "no_show",
            "vet_claim", "payment", "account", "general")
LABELS = {"urgency": URGENCY, "emotion": EMOTION, "category": CATEGORY}

# Routing queues of the default playbooks.
QUEUES = ("emergency", "safety", "claims", "support")
