"""The team in a real browser: a supervisor adds an agent to a queue, the queue's next case goes to them and they
show in the dashboard's load table; the user page edits them and makes a reset link, on a phone's width too."""

import re

from conftest import ARTIFACTS
from playwright.sync_api import expect
from sqlalchemy import select
from test_accessibility_browser import horizontal_overflow
from test_console_browser import sms

from assist.models import Case, Event, User, UserRole

PHONE_WIDTH = 390  # px


def test_a_supervisor_adds_an_agent_who_is_routed_the_queues_next_case(open_page, live_server, make_user, session,
                                                                       drain):
    ARTIFACTS.mkdir(exist_ok=True)
    page = open_page(make_user(UserRole.SUPERVISOR))
    page.goto(live_server.url + "/admin/users")
    form = page.locator("#new-user")
    form.get_by_label("Email").fill("nia@team.test")
    form.get_by_label("Name").fill("Nia Okafor")
    form.get_by_label("Password").fill("a long enough password")
    form.get_by_label("support").check()
    form.get_by_label("Capacity").fill("2")
    form.get_by_role("button", name="Add").click()
    expect(page.locator(".flash")).to_contain_text("Created nia@team.test (agent).")

    sms(live_server, "quick question about how payouts work")  # the support queue
    drain()
    session.expire_all()
    nia = session.scalars(select(User).where(User.email == "nia@team.test")).one()
    assert [c.assignee_id for c in session.scalars(select(Case))] == [nia.id]
    page.goto(live_server.url + "/dashboard/")
    load = page.locator("tr", has_text="Nia Okafor")
    expect(load.locator("[data-label='Queues']")).to_have_text("support")
    expect(load.locator("[data-label='Open cases']")).to_have_text("1")

    page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
    page.goto(live_server.url + "/admin/users")
    assert horizontal_overflow(page, PHONE_WIDTH) is None
    page.screenshot(path=str(ARTIFACTS / "users-390.png"), full_page=True)
    page.get_by_role("link", name="Nia Okafor").click()
    page.get_by_label("claims").check()
    page.get_by_label("Phone (E.164)").fill("+15035550142")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("Saved nia@team.test.")
    expect(page.get_by_label("claims")).to_be_checked()
    page.get_by_role("button", name="Make a reset link").click()
    expect(page.locator("#reset-link code")).to_have_text(re.compile(r"/reset-password\?token=[\w-]{40,}$"))
    assert horizontal_overflow(page, PHONE_WIDTH) is None
    page.screenshot(path=str(ARTIFACTS / "user-390.png"), full_page=True)
    session.expire_all()
    assert session.get(User, nia.id).queues == ["claims", "support"]
    assert [e.kind for e in session.scalars(select(Event).where(Event.kind.like("user.%")).order_by(Event.id))] == [
        "user.created", "user.edited", "user.reset_link_issued"]
