"""The service desk's enumerations (api.md "Enumerations", plus its own) and its defaults."""

TICKET_TYPES = ("repair", "complaint", "consultation", "suggestion", "cleaning")
CHANNELS = ("phone", "wechat", "weibo", "web", "email", "sms", "in_app", "face_to_face")
PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("new", "assigned", "in_progress", "awaiting_customer", "resolved", "closed",
            "reopened")
#: the closed loop (accept → assign → work → resolve → feedback → close; reopen). Anything
#: else is a Conflict. ``assigned`` is reached through assignment; ``reopened`` needs a reason.
TRANSITIONS = {
    "new": ("assigned",),
    "assigned": ("in_progress", "resolved"),
    "in_progress": ("awaiting_customer", "resolved"),
    "awaiting_customer": ("in_progress",),
    "resolved": ("closed", "reopened"),
    "closed": ("reopened",),
    "reopened": ("assigned", "in_progress"),
}
#: statuses that count towards an agent's load (work still to do)
OPEN_STATUSES = ("new", "assigned", "in_progress", "awaiting_customer", "reopened")
DONE_STATUSES = ("resolved", "closed")
#: a move into one of these by staff is the ticket's first response (so is a staff comment)
RESPONSE_STATUSES = ("in_progress", "awaiting_customer", "resolved")
#: ticket types that get on-site appointments (a visit to the apartment)
ON_SITE_TYPES = ("repair", "cleaning")
APPOINTMENT_MINUTES = 90
SLA_KINDS = ("first_response", "resolution")

#: SLA targets in business minutes: type → priority → (first response, resolution).
#: A business day is 12 hours (09:00-21:00), i.e. 720 business minutes.
DEFAULT_SLA = {
    "repair": {"urgent": (30, 240), "high": (60, 480), "normal": (120, 1440),
               "low": (240, 2880)},
    "complaint": {"urgent": (30, 240), "high": (60, 720), "normal": (120, 1440),
                  "low": (240, 2880)},
    "consultation": {"urgent": (15, 60), "high": (30, 240), "normal": (60, 480),
                     "low": (120, 1440)},
    "suggestion": {"urgent": (60, 1440), "high": (120, 2880), "normal": (240, 4320),
                   "low": (480, 7200)},
    "cleaning": {"urgent": (60, 480), "high": (120, 720), "normal": (240, 1440),
                 "low": (480, 2880)},
}
#: the service centre's business calendar: every day 09:00-21:00 Shanghai time, no holidays
#: until configured (``workdays``: extra working days, e.g. a 调休 weekend when the weekdays
#: are restricted).
DEFAULT_CALENDAR = {"timezone": "Asia/Shanghai", "opens": "09:00", "closes": "21:00",
                    "weekdays": [1, 2, 3, 4, 5, 6, 7], "holidays": [], "workdays": []}
SYSTEM_ACTOR = "system"
