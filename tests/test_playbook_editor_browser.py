"""The playbook editor in a real browser: a textarea edit (sent with the "\r\n" line ends browsers use) saves a
draft whose history shows exactly the changed line; preview renders the unsaved text; an error marks its line."""

from conftest import ARTIFACTS
from playwright.sync_api import expect

from assist import playbook_versions
from assist.models import UserRole

PLAYBOOK = "lost-pet-now"


def test_a_supervisor_edits_previews_and_sees_errors_marked(open_page, live_server, make_user, session):
    playbook_versions.published(session)  # seeds the playbooks
    session.commit()
    page = open_page(make_user(UserRole.SUPERVISOR))
    page.goto(f"{live_server.url}/playbooks/{PLAYBOOK}")
    editor = page.locator("textarea[name=yaml]")
    seeded = editor.input_value()
    editor.fill(seeded.replace("first_response_minutes: 5", "first_response_minutes: 6"))
    page.get_by_role("button", name="Save draft", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("Saved draft version 2")
    assert "\r" not in playbook_versions.draft(session, PLAYBOOK).yaml

    page.goto(f"{live_server.url}/playbooks/{PLAYBOOK}/history")
    changed = page.locator(".card").first.locator(".diff-added, .diff-removed")
    expect(changed).to_have_text(["-  first_response_minutes: 5", "+  first_response_minutes: 6"])
    page.screenshot(path=str(ARTIFACTS / "playbook-history.png"), full_page=True)

    page.goto(f"{live_server.url}/playbooks/{PLAYBOOK}")
    unsaved = editor.input_value().replace("Search nearby now", "UNSAVED: search nearby now")
    editor.fill(unsaved)
    page.fill("textarea[name=text]", "the husky slipped her collar and ran off")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview .preview-reply")).to_contain_text("Reply: Hi Sam. UNSAVED: search nearby now")
    assert editor.input_value() == unsaved  # the unsaved text is still in the editor
    assert playbook_versions.draft(session, PLAYBOOK).number == 2  # and nothing was saved

    lines = unsaved.split("\n")
    broken_line = lines.index("  queue: emergency") + 1
    editor.fill(unsaved.replace("  queue: emergency", "  queue: vip"))
    page.get_by_role("button", name="Save draft", exact=True).click()  # saved even if invalid, so no edit is lost
    expect(page.locator(".gutter li.marked")).to_have_text([str(broken_line)])
    problem = page.locator(".problem-line")
    expect(problem).to_have_text(f"line {broken_line}, column 3")
    problem.click()
    selected = page.evaluate("(() => { const t = document.querySelector('textarea[name=yaml]');"
                             " return t.value.slice(t.selectionStart, t.selectionEnd); })()")
    assert selected == "  queue: vip"
    page.screenshot(path=str(ARTIFACTS / "playbook-editor-error.png"), full_page=True)
    editor.press("End")
    editor.press("Enter")  # a line more: the gutter follows the text and keeps the mark
    expect(page.locator(".gutter li")).to_have_count(len(lines) + 1)
    expect(page.locator(".gutter li.marked")).to_have_text([str(broken_line)])
