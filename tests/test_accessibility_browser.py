"""Every console page in Chromium, on a desktop and on a phone: axe-core finds no serious or critical
accessibility violation, nothing scrolls sideways at 390 px, and the case page's reply box is reachable.

axe-core comes from the npm registry (a pinned version, its tarball checked against a pinned sha512) and is
cached under .cache/; the test serves it to each page from a same-origin URL, as the CSP allows no other.
Screenshots of every page at both sizes go to test-artifacts/screenshots/ (SCREENSHOTS_DIR moves them).
"""

import base64
import hashlib
import io
import os
import tarfile
import urllib.request
from pathlib import Path

import pytest
from conftest import ACCOUNT_SID, PASSWORD, TEAM_NUMBER, need_service
from sqlalchemy import select

from assist import cases, members
from assist.ingest import ingest
from assist.models import Case, UserRole
from assist.simulate import sms_params
from channels.message import Channel, InboundMessage

ROOT = Path(__file__).parents[1]
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR", ROOT / "test-artifacts" / "screenshots"))
AXE_VERSION = "4.10.3"
AXE_TARBALL = f"https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz"
AXE_SHA512 = "Xm7bpRXnDSX2YE2YFfBk2FnF0ep6tmG7xPh8iHee8MIcrgq762Nkce856dYtJYLkuIoYZvGfTs/PbZhideTcEg=="  # npm's
AXE_CACHE = ROOT / ".cache" / f"axe-core-{AXE_VERSION}.tgz"
AXE_PATH = "/__test__/axe.min.js"  # same origin as the pages, so their CSP (script-src 'self') lets it run
BLOCKING = {"serious", "critical"}  # axe's impacts that fail the test
# The pages whose phone layout differs most (a table of cards, the folded menu, one column) are checked by axe at
# 390 px too; the others have the same markup and colours at both sizes.
AXE_ON_A_PHONE = {"queue", "case-sms"}
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
CUSTOMER = "+15035550700"


def axe_source() -> bytes:
    """axe.min.js of the pinned axe-core: downloaded once into .cache/, checked against its sha512 each time."""
    tarball = AXE_CACHE.read_bytes() if AXE_CACHE.exists() else download(AXE_TARBALL)
    digest = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    assert digest == AXE_SHA512, f"{AXE_TARBALL} (or {AXE_CACHE}) is not axe-core {AXE_VERSION} as published"
    if not AXE_CACHE.exists():
        AXE_CACHE.parent.mkdir(parents=True, exist_ok=True)
        AXE_CACHE.write_bytes(tarball)
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        return archive.extractfile("package/axe.min.js").read()


def download(url: str) -> bytes:
    """url's body; without the network the test skips, except under CI, where it fails."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read()
    except OSError as exc:
        need_service(f"the npm registry ({url})", exc)  # skips or fails the test: never returns


@pytest.fixture(scope="module")
def axe() -> bytes:
    return axe_source()


def a_busy_console(session, live_server, drain) -> dict[str, int]:
    """An emergency by SMS from a member (evidence, suggestions, a checklist, a reply and a note) and a long
    email: the cases whose pages are checked."""
    members.import_csv(session, io.StringIO("member_id,role,name,phone,email,pet_name,pet_species,pet_breed,pet_notes\n"
                                            f"M-7,owner,Rosa Diaz,{CUSTOMER},,Pico,dog,beagle,\n"))
    session.commit()
    live_server.post_signed("/twilio/sms", sms_params(
        from_=CUSTOMER, to=TEAM_NUMBER, account_sid=ACCOUNT_SID,
        body="Pico just got hit by a car on Elm St, he's bleeding from his leg. He isn't breathing right"))
    text = ("The sitter never came on Saturday and nobody answered the phone. " * 12
            + "Invoice: https://payments.example.com/invoices/2026/06/03/a-very-long-path-that-does-not-wrap")
    ingest(session, InboundMessage(channel=Channel.EMAIL, channel_id="<noshow@example.com>",
                                   sender="ann.peters.with.a.long.address@example.com",
                                   recipient="incidents@incident-team.test", text=text, original=text,
                                   subject="Sitter no-show for booking B-1234, I want my money back",
                                   sender_name="Ann Peters"))
    session.commit()
    drain()
    emergency = session.scalars(select(Case).where(Case.urgency == "critical")).one()
    email = session.scalars(select(Case).where(Case.id != emergency.id)).one()
    cases.note(session, emergency, "Called Rosa; going to the emergency vet on 5th", author=None)
    session.commit()
    return {"sms": emergency.id, "email": email.id}


def pages(case_ids: dict[str, int], user_id: int) -> dict[str, str]:
    """Every page checked, by name."""
    return {
        "queue": "/",
        "case-sms": f"/cases/{case_ids['sms']}",
        "case-email": f"/cases/{case_ids['email']}",
        "dashboard": "/dashboard/",
        "search": "/dashboard/search?q=sitter",
        "summary": "/summary/",
        "playbooks": "/playbooks/",
        "playbook": "/playbooks/pet-health-emergency",
        "history": "/playbooks/pet-health-emergency/history",
        "users": "/admin/users",
        "access-log": "/access-log/",
        "user": f"/admin/users/{user_id}",
        "tokens": "/tokens/",
        "not-found": "/cases/999999",
    }


def open_console(browser, live_server, axe: bytes, viewport: dict, logins: dict | None = None):
    """A page of a new browser context of viewport's size (with logins: the storage state of a logged-in
    context) that can load axe-core."""
    phone = viewport == PHONE
    context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone, storage_state=logins)
    context.route(f"{live_server.url}{AXE_PATH}",
                  lambda route: route.fulfill(body=axe, content_type="application/javascript"))
    return context.new_page()


def log_in(page, live_server, user) -> None:
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")


def serious_violations(page, live_server) -> list[dict]:
    page.add_script_tag(url=live_server.url + AXE_PATH)
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [v for v in found if v["impact"] in BLOCKING]


def readable(name: str, violation: dict) -> str:
    nodes = "\n".join(f"      {' '.join(n['target'])}: {n['failureSummary'].splitlines()[-1].strip()}"
                      for n in violation["nodes"][:5])
    return f"{name}: {violation['id']} ({violation['impact']}) {violation['help']}\n{nodes}"


def horizontal_overflow(page, width: int) -> str | None:
    """What sticks out past width, if the document is wider (a page without a viewport meta tag is laid out
    980 px wide on a phone: that counts too)."""
    return page.evaluate("""(width) => {
        if (document.documentElement.scrollWidth <= width) return null;
        const wide = Array.from(document.querySelectorAll('body *'))
            .filter((el) => el.getBoundingClientRect().right > width + 1)
            .map((el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${el.className}`);
        return `scrollWidth ${document.documentElement.scrollWidth}: ${wide.slice(0, 8).join(', ')}`;
    }""", width)


def the_skip_link_leads_to_the_content(page) -> None:
    page.keyboard.press("Tab")  # the first stop: the skip link, shown once it has the focus
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").bounding_box()["y"] >= 0
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def the_menu_folds(page) -> None:
    menu, links = page.locator("#menu-toggle"), page.locator("#site-nav")
    assert links.is_hidden() and menu.get_attribute("aria-expanded") == "false"
    menu.click()
    assert links.get_by_role("link", name="Search").is_visible() and menu.get_attribute("aria-expanded") == "true"
    page.screenshot(path=str(SCREENSHOTS / "menu-390.png"))
    menu.click()
    assert links.is_hidden()


def the_reply_box_comes_before_the_side_panels(page) -> None:
    reply = page.locator("#reply-text")
    reply.scroll_into_view_if_needed()
    box = reply.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]  # all of it on the screen
    assert page.evaluate("""() => {
        const reply = document.getElementById('reply-text'), r = reply.getBoundingClientRect();
        return document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2) === reply;
    }"""), "something covers the reply box"
    above_the_aside = page.evaluate("""() => document.getElementById('reply-text').getBoundingClientRect().bottom
        < document.querySelector('.case-grid aside').getBoundingClientRect().top""")
    assert above_the_aside, "the reply box is below the suggestions, checklist and member panels"
    suggestion = page.locator("button.suggestion").first
    suggestion.click()  # further down, the suggestions still fill it
    assert page.input_value("#reply-text") == suggestion.get_attribute("data-text")


def test_every_console_page_is_accessible_and_fits_a_phone(browser, axe, live_server, session, drain, make_user):
    case_ids = a_busy_console(session, live_server, drain)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    desktop = open_console(browser, live_server, axe, DESKTOP)
    log_in(desktop, live_server, make_user(UserRole.SUPERVISOR, queues=["emergency"]))
    agent = make_user(UserRole.AGENT, queues=["support"])
    phone = open_console(browser, live_server, axe, PHONE, logins=desktop.context.storage_state())
    problems: list[str] = []
    for page, viewport in ((desktop, DESKTOP), (phone, PHONE)):
        size = viewport["width"]
        logged_out = open_console(browser, live_server, axe, viewport)
        for name, path in [("login", "/login"), *pages(case_ids, agent.id).items()]:
            on = logged_out if name == "login" else page
            on.goto(live_server.url + path)
            on.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True)
            if viewport == DESKTOP or name in AXE_ON_A_PHONE:
                problems += [readable(f"{name} at {size} px", v) for v in serious_violations(on, live_server)]
            if viewport == PHONE and (overflow := horizontal_overflow(on, size)):
                problems.append(f"{name} at {size} px scrolls sideways: {overflow}")
        logged_out.context.close()
    assert not problems, "\n".join(problems)

    phone.goto(f"{live_server.url}/cases/{case_ids['sms']}")
    the_skip_link_leads_to_the_content(phone)
    the_menu_folds(phone)
    the_reply_box_comes_before_the_side_panels(phone)
    desktop.context.close()
    phone.context.close()
