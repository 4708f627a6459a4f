"""SMS segments: how many parts a text is split into on the carrier network (each one is billed).

Shared by the SMS channel and the core (which stores the count with every SMS it sends).
"""

# GSM 03.38: the basic set costs one septet, the extension set two (escape + char).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_SINGLE, GSM7_MULTI = 160, 153  # septets per segment (a multipart header takes 7)
UCS2_SINGLE, UCS2_MULTI = 70, 67  # UTF-16 code units per segment


def encoding(text: str) -> str:
    """Return "GSM-7" when every character fits the GSM 03.38 alphabet, else "UCS-2"."""
    return "GSM-7" if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else "UCS-2"


def segment_count(text: str) -> int:
    """Count the SMS segments text is split into, as the carrier network does."""
    if not text:
        return 1
    if encoding(text) == "GSM-7":
        units = [2 if c in GSM7_EXTENSION else 1 for c in text]
        single, multi = GSM7_SINGLE, GSM7_MULTI
    else:
        units = [2 if ord(c) > 0xFFFF else 1 for c in text]  # astral characters are surrogate pairs
        single, multi = UCS2_SINGLE, UCS2_MULTI
    if sum(units) <= single:
        return 1
    # An escape pair or a surrogate pair is never split across two segments.
    segments, used = 1, 0
    for size in units:
        if used + size > multi:
            segments, used = segments + 1, 0
        used += size
    return segments
