"""Staff commands in chat: roles, audit, broadcasts, reports and exports.

The router role-checks every command registered here and audits the attempt (`staff:<name>`
or `staff_denied`); this module audits what the command then did (`staff_promote`,
`broadcast_scheduled`, `export` …). Form submissions are checked again, since a role may be
taken away while a form is open. Broadcasts are composed with two forms: the compose form
(texts and segment) saves a draft and posts its preview; the send form that follows sends,
schedules or discards it.

handlers/features.py loads this module by name; importing it registers the commands, in the
order below (import from here; the modules are the implementation):

- `staff_chat`: what they share: who is staff now, a staff reply, a message outside it.
- `staff_team`: /staff (the help), /team, /promote, /demote, /audit.
- `staff_broadcasts`: /broadcast, /broadcasts, /bcpreview, /bcsend, /bcstats, /bccancel,
  /bcretry.
- `staff_broadcasts_forms`: the compose and send forms' submissions.
- `staff_reports`: /report and /export.
"""

# Imported in the order their commands and form handlers were always registered in.
# isort: off
from handlers.staff_chat import _is_staff, _post, _say, logger
from handlers.staff_team import _target, _who, audit_log, demote, promote, staff_help, team
from handlers.staff_broadcasts import (
    COMPOSE_FORM,
    SEND_FORM,
    _broadcast,
    _error,
    _number,
    _preview_text,
    _schedule,
    _scheduled_text,
    _when,
    cancel,
    compose,
    list_broadcasts,
    preview,
    retry,
    send,
    stats,
)
from handlers.staff_broadcasts_forms import _decided, _drafted, _refused, _segment
from handlers.staff_reports import export, report

# isort: on

__all__ = [
    "COMPOSE_FORM",
    "SEND_FORM",
    "_broadcast",
    "_decided",
    "_drafted",
    "_error",
    "_is_staff",
    "_number",
    "_post",
    "_preview_text",
    "_refused",
    "_say",
    "_schedule",
    "_scheduled_text",
    "_segment",
    "_target",
    "_when",
    "_who",
    "audit_log",
    "cancel",
    "compose",
    "demote",
    "export",
    "list_broadcasts",
    "logger",
    "preview",
    "promote",
    "report",
    "retry",
    "send",
    "staff_help",
    "stats",
    "team",
]
