"""Who may see which case: least privilege by queue.

Agents see and act on the cases of their queues and the cases assigned to them; leads, supervisors and
admins see every case. The same rule filters pages, the API and the live event stream.
"""

from typing import Any

from sqlalchemy import ColumnElement, false, or_, true

from assist.models import Case, User, UserRole


def sees_all(user: User) -> bool:
    return user.has_role(UserRole.LEAD)


def may_see(user: User, queue: str | None, assignee_id: int | None) -> bool:
    """Whether user may see a case in queue, held by assignee_id."""
    return sees_all(user) or (assignee_id is not None and assignee_id == user.id) or queue in (user.queues or [])


def can_see(user: User, case: Case) -> bool:
    return may_see(user, case.queue, case.assignee_id)


def may_read_restricted(user: User, case: Case) -> bool:
    """Whether user may read case's restricted notes: leads and up. The one place the rule lives, so a case's
    assigned safety reviewer joins it here when reviews exist; everyone else is shown nothing of them."""
    return user.has_role(UserRole.LEAD)


def visible_cases(user: User) -> ColumnElement[bool]:
    """A WHERE clause on Case: the cases user may see."""
    if sees_all(user):
        return true()
    mine = Case.assignee_id == user.id
    return or_(Case.queue.in_(user.queues), mine) if user.queues else or_(mine, false())


def event_visible(user: User, event: dict[str, Any]) -> bool:
    """Whether a live event (assist.events) may reach user's console: a case's events carry its queue and
    assignee; an event about no case (a playbook published, a call waiting) carries what decides it too."""
    if sees_all(user):
        return True
    if "queue" not in event:
        return False  # an event that does not say whose it is goes to those who see everything
    return may_see(user, event["queue"], event.get("assignee_id"))
