"""The customer service's enumerations (api.md "Enumerations", plus the record's own)."""

STAGES = ("potential", "intent", "first_time", "repeat", "churn_warning", "churned")
VALUE_TIERS = ("key", "important", "ordinary", "small")
KINDS = ("person", "company")
GENDERS = ("male", "female", "other")
EDUCATION = ("high_school", "associate", "bachelor", "master", "doctorate", "other")
# monthly income in CNY
INCOME_BANDS = ("below_5k", "5k_10k", "10k_20k", "20k_30k", "above_30k")
SOURCES = ("walk_in", "referral", "website", "wechat", "weibo", "agent", "campaign",
           "corporate", "phone", "other")
CHANNELS = ("phone", "wechat", "weibo", "web", "email", "sms", "in_app", "face_to_face")
DIRECTIONS = ("inbound", "outbound")
# channels a customer can consent to marketing on
CONSENT_CHANNELS = ("sms", "email", "wechat", "phone", "in_app")
CHURN_DECISIONS = ("keep_trying", "confirm_churn")
