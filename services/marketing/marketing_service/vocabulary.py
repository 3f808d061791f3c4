"""The marketing service's enumerations (api.md "Marketing", plus its own)."""

CHANNELS = ("sms", "email", "wechat", "in_app")
#: the customer's consent flag and address field each channel needs
CHANNEL_CONSENT = {"sms": "sms", "email": "email", "wechat": "wechat", "in_app": "in_app"}
CHANNEL_ADDRESS = {"sms": "mobile", "email": "email", "wechat": "wechat_id", "in_app": "id"}

CAMPAIGN_STATUSES = ("draft", "scheduled", "launching", "sending", "completed")
MESSAGE_STATUSES = ("queued", "sent", "delivered", "failed", "skipped")
#: why a recipient got no message
SKIP_REASONS = ("erased", "merged", "archived", "no_consent", "no_address", "frequency_cap",
                "missing_field")
RECEIPT_STATUSES = ("delivered", "failed")

CARE_KINDS = ("birthday", "holiday", "move_in", "lease_anniversary", "renewal_reminder")
#: holidays on the lunar calendar, computed each year; any other holiday is "custom" with a date
LUNAR_HOLIDAYS = {"spring_festival": ((1, 1), "春节"), "dragon_boat": ((5, 5), "端午节"),
                  "mid_autumn": ((8, 15), "中秋节")}
HOLIDAYS = (*LUNAR_HOLIDAYS, "custom")

#: customer fields a template may name as ``{field}``
CUSTOMER_FIELDS = ("name", "mobile", "email", "wechat_id", "gender", "occupation", "industry",
                   "employer", "city", "district", "member_tier")
#: fields each care occasion adds to the customer's
OCCASION_FIELDS = {"birthday": (), "holiday": ("holiday_name",),
                   "move_in": ("move_in_date",),
                   "lease_anniversary": ("years", "move_in_date"),
                   "renewal_reminder": ("lease_end_date", "days_left")}

#: segment rule keys that take a list of strings, and the audience column each one reads
LIST_RULES = ("tags", "stage", "value_tier", "rfm_segment", "district", "city", "industry",
              "source", "gender", "member_tier")
