"""The dashboard's service levels in Chromium: charts with axes and dates, legends coloured as their bars, and the
figures refreshed every minute without a reload."""

from conftest import ARTIFACTS
from test_metrics import HOUR, MINUTE, add, at

from assist.models import UserRole

SERIES = ("met", "missed", "undue", "median", "p90")


def test_a_lead_reads_charts_with_axes_dates_and_matching_legends_refreshed_every_minute(
        open_page, live_server, make_user, session, clock):
    add(session, at(1, 10), queue="emergency", first_response=2 * MINUTE, due=5 * MINUTE, resolved=HOUR)
    add(session, at(1, 11), queue="emergency", first_response=10 * MINUTE, due=5 * MINUTE)
    add(session, at(2, 9), queue="claims", due=HOUR)
    add(session, at(2, 12), queue="support", first_response=3 * MINUTE)  # no SLA
    session.commit()
    page = open_page(make_user(UserRole.LEAD))
    page.set_default_timeout(5000)
    page.clock.install()
    page.goto(f"{live_server.url}/dashboard/?from=2026-06-01&to=2026-06-03")

    cases_chart = page.locator("#cases-chart")
    assert cases_chart.locator(".axis text").all_text_contents() == ["0", "1", "2", "cases"]
    assert cases_chart.locator("text.date").all_text_contents() == ["Jun 01", "Jun 02", "Jun 03"]
    assert page.locator("#response-chart .axis text").all_text_contents()[-1] == "minutes"
    for series in SERIES:
        bar = page.locator(f"svg rect.series-{series}").first
        swatch = page.locator(f".legend .swatch.series-{series}")
        assert bar.evaluate("e => getComputedStyle(e).fill") == swatch.evaluate(
            "e => getComputedStyle(e).backgroundColor"), series
    colours = {page.locator(f".legend .swatch.series-{s}").evaluate("e => getComputedStyle(e).backgroundColor")
               for s in SERIES}
    assert len(colours) == len(SERIES)  # no two series alike
    assert page.locator("#levels-table tr.total td[data-label=Cases]").inner_text() == "4"
    page.screenshot(path=str(ARTIFACTS / "dashboard-levels.png"), full_page=True)

    add(session, at(3, 9), queue="support", first_response=MINUTE, due=5 * MINUTE)
    session.commit()
    page.clock.fast_forward("01:00")
    page.locator("#figures[data-refreshed-at]").wait_for(state="attached")
    assert page.locator("#levels-table tr.total td[data-label=Cases]").inner_text() == "5"
    assert page.locator('#cases-chart g[data-period="2026-06-03"]').get_attribute("data-cases") == "1"
