"""Marketing (the marketing service): segments, campaigns and their responses, care rules, the
delivery log — four blueprints (one per resource group in the OpenAPI document), thin calls.

Each view checks the request's JSON types (marshmallow; the service checks the values and names
every bad field in one 422), adds who is asking (``actor``), calls one RPC
(docs/rpc-contracts.md, section "marketing") and dumps the answer through a schema. The
service's NotFound/Conflict/InvalidInput become 404/409/422 with their details
(crm_gateway.errors). A campaign's ``cost`` stays a decimal string end to end.

Launching a campaign answers 202 Accepted with the campaign (``launching``): the service records
its recipients in the background, then sends; ``GET /campaigns/{id}/stats`` follows the progress.

Who may call what is in ``permissions.ROUTES`` ("marketing" groups). A customer manager or
supervisor reaches the delivery log and the campaign responses of their own customers only
(``crm_gateway.scopes``).
"""
from flask import jsonify
from flask_smorest import Blueprint

from crm_gateway import rpc, scopes
from crm_gateway.blueprints import (AUTH_ERRORS, RPC_ERRORS, actor, error_responses,
                                     given_filters)
from crm_gateway.schemas.common import PageQuery
from crm_gateway.schemas.marketing import (
    CARE_RUN_RESULT, CampaignCreateSchema, CampaignPageSchema, CampaignQuerySchema,
    CampaignSchema, CampaignStatsSchema, CareRuleChangesSchema, CareRuleCreateSchema,
    CareRulePageSchema, CareRuleQuerySchema, CareRuleSchema, CareRunInSchema,
    MessagePageSchema, MessageQuerySchema, MessageSchema, ReceiptInSchema, ResponseInSchema,
    ResponsePageSchema, ResponseSchema, SegmentCreateSchema, SegmentPageSchema,
    SegmentPreviewSchema, SegmentQuerySchema, SegmentSchema,
)

MARKETING = "marketing"
API = "/api/v1"

segments_blp = Blueprint("segments", __name__, url_prefix=API,
                         description="Segments (客户细分), the marketing service: audiences "
                                     "defined by rules on customer facts, previewed")
campaigns_blp = Blueprint("campaigns", __name__, url_prefix=API,
                          description="Campaigns (营销活动), the marketing service: a template "
                                      "sent to a segment on one channel, launched, measured "
                                      "(delivery, responses, opportunities, leases, cost)")
care_rules_blp = Blueprint("care rules", __name__, url_prefix=API,
                           description="Care rules (客户关怀), the marketing service: "
                                       "automatic greetings on birthdays, holidays, move-in "
                                       "and lease anniversaries, renewal reminders")
messages_blp = Blueprint("messages", __name__, url_prefix=API,
                         description="The delivery log, the marketing service: every message "
                                     "of a campaign or a care rule as sent, and its receipts")

BLUEPRINTS = (segments_blp, campaigns_blp, care_rules_blp, messages_blp)


def _page(method, query, names):
    return rpc.call(MARKETING, method, given_filters(query, names), query["page"],
                    query["per_page"])


# ================================================================ segments

@segments_blp.route("/segments", methods=["POST"])
@segments_blp.arguments(SegmentCreateSchema)
@segments_blp.response(201, SegmentSchema)
@error_responses(segments_blp, *AUTH_ERRORS, 409, *RPC_ERRORS)
def create_segment(data):
    """A segment: a ``name`` (unique, else 409) and ``rules`` (every key narrows the audience,
    a list matches any of its values); an unknown rule or a bad value → 422 on
    ``rules.<key>``."""
    return rpc.call(MARKETING, "create_segment", data, actor())


@segments_blp.route("/segments", methods=["GET"])
@segments_blp.arguments(SegmentQuerySchema, location="query")
@segments_blp.response(200, SegmentPageSchema)
@error_responses(segments_blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_segments(query):
    """Segments, by part of the name."""
    return _page("list_segments", query, ("q",))


@segments_blp.route("/segments/<segment_id>", methods=["GET"])
@segments_blp.response(200, SegmentSchema)
@error_responses(segments_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def get_segment(segment_id):
    """One segment."""
    return rpc.call(MARKETING, "get_segment", segment_id)


@segments_blp.route("/segments/<segment_id>/preview", methods=["GET"])
@segments_blp.arguments(PageQuery, location="query")
@segments_blp.response(200, SegmentPreviewSchema)
@error_responses(segments_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def preview_segment(query, segment_id):
    """Who the segment reaches now: a page of customers (``customer_id``, name, stage, value
    tier, district, tags) with ``total`` = the segment's size."""
    return rpc.call(MARKETING, "preview_segment", segment_id, query["page"], query["per_page"])


# ================================================================ campaigns

@campaigns_blp.route("/campaigns", methods=["POST"])
@campaigns_blp.arguments(CampaignCreateSchema)
@campaigns_blp.response(201, CampaignSchema)
@error_responses(campaigns_blp, *AUTH_ERRORS, *RPC_ERRORS)
def create_campaign(data):
    """A campaign (``draft``, or ``scheduled`` with ``scheduled_at``). A placeholder of the
    template that is no customer field → 422 on ``template``; an unknown segment → 422 on
    ``segment_id``."""
    return rpc.call(MARKETING, "create_campaign", data, actor())


@campaigns_blp.route("/campaigns", methods=["GET"])
@campaigns_blp.arguments(CampaignQuerySchema, location="query")
@campaigns_blp.response(200, CampaignPageSchema)
@error_responses(campaigns_blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_campaigns(query):
    """Campaigns by status, channel and segment."""
    return _page("list_campaigns", query, ("status", "channel", "segment_id"))


@campaigns_blp.route("/campaigns/<campaign_id>", methods=["GET"])
@campaigns_blp.response(200, CampaignSchema)
@error_responses(campaigns_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def get_campaign(campaign_id):
    """One campaign."""
    return rpc.call(MARKETING, "get_campaign", campaign_id)


@campaigns_blp.route("/campaigns/<campaign_id>/launch", methods=["POST"])
@campaigns_blp.response(202, CampaignSchema)
@error_responses(campaigns_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def launch_campaign(campaign_id):
    """Launch a draft or scheduled campaign now (409 otherwise): 202 Accepted with the campaign
    (``launching``). The service records its recipients in the background (a message each,
    personalised, or skipped with the reason), then sends them; follow it at
    ``GET /campaigns/{id}/stats``."""
    return rpc.call(MARKETING, "launch_campaign", campaign_id, actor())


@campaigns_blp.route("/campaigns/<campaign_id>/stats", methods=["GET"])
@campaigns_blp.response(200, CampaignStatsSchema)
@error_responses(campaigns_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def campaign_stats(campaign_id):
    """How the campaign did: recipients and skipped ones by reason, queued, sent, delivered,
    failed, the delivery rate, responses, the opportunities and leases they led to, cost per
    lease."""
    return rpc.call(MARKETING, "campaign_stats", campaign_id)


@campaigns_blp.route("/campaigns/<campaign_id>/responses", methods=["POST"])
@campaigns_blp.arguments(ResponseInSchema)
@campaigns_blp.response(201, ResponseSchema)
@error_responses(campaigns_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def record_response(data, campaign_id):
    """A recipient answered the campaign: an opportunity (source ``campaign``) opens for them
    in the sales service. Not a recipient → 422 on ``customer_id``; a second response of the
    same customer → 409."""
    with scopes.references(data, customer_id="customer") as body:
        return rpc.call(MARKETING, "record_response", campaign_id, body, actor())


@campaigns_blp.route("/campaigns/<campaign_id>/responses", methods=["GET"])
@campaigns_blp.arguments(PageQuery, location="query")
@campaigns_blp.response(200, ResponsePageSchema)
@error_responses(campaigns_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def list_responses(query, campaign_id):
    """The campaign's responses (a customer manager's: of their customers)."""
    return rpc.call(MARKETING, "list_responses", campaign_id, query["page"], query["per_page"],
                    scopes.response_customers())


# ================================================================ care rules

@care_rules_blp.route("/care-rules", methods=["POST"])
@care_rules_blp.arguments(CareRuleCreateSchema)
@care_rules_blp.response(201, CareRuleSchema)
@error_responses(care_rules_blp, *AUTH_ERRORS, *RPC_ERRORS)
def create_care_rule(data):
    """An automatic greeting (active unless said otherwise): on which occasion (``kind``), on
    which channel, with which words (``template``); bad values → one 422 naming each field."""
    return rpc.call(MARKETING, "create_care_rule", data, actor())


@care_rules_blp.route("/care-rules", methods=["GET"])
@care_rules_blp.arguments(CareRuleQuerySchema, location="query")
@care_rules_blp.response(200, CareRulePageSchema)
@error_responses(care_rules_blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_care_rules(query):
    """Care rules by kind and ``active``."""
    return _page("list_care_rules", query, ("kind", "active"))


@care_rules_blp.route("/care-rules/<rule_id>", methods=["PATCH"])
@care_rules_blp.arguments(CareRuleChangesSchema)
@care_rules_blp.response(200, CareRuleSchema)
@error_responses(care_rules_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def update_care_rule(changes, rule_id):
    """Change a care rule (its words, its channel, ``active: false`` to pause it)."""
    return rpc.call(MARKETING, "update_care_rule", rule_id, changes, actor())


@care_rules_blp.route("/care-rules/run", methods=["POST"])
@care_rules_blp.arguments(CareRunInSchema)
@care_rules_blp.response(200, CARE_RUN_RESULT)
@error_responses(care_rules_blp, *AUTH_ERRORS, *RPC_ERRORS)
def run_care_rules(data):
    """Run the active care rules for ``today`` (default: today in the service's time zone) as
    the service's timer does; answers, per rule id, the messages this run recorded (a customer
    gets one message per occasion however often the rules run)."""
    return jsonify(rpc.call(MARKETING, "run_care_rules", data.get("today")))


# ================================================================ the delivery log

@messages_blp.route("/messages", methods=["GET"])
@messages_blp.arguments(MessageQuerySchema, location="query")
@messages_blp.response(200, MessagePageSchema)
@error_responses(messages_blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_messages(query):
    """The delivery log by customer, campaign, care rule, status and channel; the newest
    first. Each message with its ``body`` as sent."""
    filters = given_filters(query, ("customer_id", "campaign_id", "care_rule_id", "status",
                                    "channel"))
    return rpc.call(MARKETING, "list_messages", scopes.by_customer(filters), query["page"],
                    query["per_page"])


@messages_blp.route("/messages/<message_id>", methods=["GET"])
@messages_blp.response(200, MessageSchema)
@error_responses(messages_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def get_message(message_id):
    """One message of the delivery log."""
    return scopes.fetch("message", message_id)


@messages_blp.route("/messages/<message_id>/receipts", methods=["POST"])
@messages_blp.arguments(ReceiptInSchema)
@messages_blp.response(200, MessageSchema)
@error_responses(messages_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def record_receipt(data, message_id):
    """The provider's delivery receipt for a sent message (``delivered`` or ``failed`` with
    its ``error``); answers the message. A receipt for a message not yet sent → 409."""
    return rpc.call(MARKETING, "record_receipt", message_id, data)
