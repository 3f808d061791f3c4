"""The sales (leasing) service's enumerations (api.md "Enumerations", plus its own)."""

UNIT_STATUSES = ("vacant", "reserved", "leased", "maintenance")
OPPORTUNITY_STAGES = ("new", "contacted", "viewing_booked", "viewed", "negotiating", "won", "lost")
OPEN_STAGES = ("new", "contacted", "viewing_booked", "viewed", "negotiating")
#: probability of winning by stage (forecast = Σ expected value × probability)
STAGE_PROBABILITY = {"new": "0.10", "contacted": "0.20", "viewing_booked": "0.40",
                     "viewed": "0.60", "negotiating": "0.80", "won": "1.00", "lost": "0.00"}
#: days an opportunity may stay in a stage before its owner and supervisor are alerted
DEFAULT_OPPORTUNITY_STAGE_LIMITS = {"new": 3, "contacted": 7, "viewing_booked": 7,
                                    "viewed": 7, "negotiating": 14}
LOSS_REASONS = ("price", "location", "layout", "competitor", "timing", "no_response",
                "not_qualified", "other")
OPPORTUNITY_SOURCES = ("walk_in", "referral", "website", "wechat", "weibo", "agent", "campaign",
                       "renewal", "phone", "other")
LEASE_STATUSES = ("active", "ended", "terminated", "renewed")
PAYMENT_CYCLES = ("monthly", "quarterly", "half_yearly", "yearly")
BILL_STATUSES = ("unpaid", "partially_paid", "paid", "overdue")
BILL_KINDS = ("rent", "deposit", "utilities", "service_fee", "late_fee", "other")
EXTRA_BILL_KINDS = ("utilities", "service_fee", "other")
PAYMENT_METHODS = ("cash", "bank_transfer", "wechat_pay", "alipay", "card", "other")
#: how a bill is settled from the deposit at move-out (not accepted from clients)
DEPOSIT_SETTLEMENT = "deposit"
VIEWING_RESULTS = ("interested", "not_interested", "no_show", "needs_second_viewing")
TASK_KINDS = ("task", "reminder", "appointment", "collection", "renewal", "stagnation")
