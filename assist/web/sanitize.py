"""Customer HTML (email bodies) made safe to show: nh3 (the ammonia sanitizer) with a strict allow-list."""

import nh3
from markupsafe import Markup

# Text formatting and tables only: no scripts, styles, forms, frames, images or event handlers.
TAGS = {"a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr", "i", "li", "ol", "p",
        "pre", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "u", "ul"}
ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}


def sanitized_html(html: str | None) -> Markup:
    """Return html cleaned for display; links open outside the console and carry no referrer."""
    if not html:
        return Markup("")
    clean = nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                      link_rel="noopener noreferrer nofollow", strip_comments=True)
    return Markup(clean)  # nosec B704  # nh3's output is safe by construction (allow-listed tags and attributes)
