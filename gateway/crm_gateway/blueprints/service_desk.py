"""Service desk (the service_desk service): tickets with their SLA, assignment, workflow,
comments, appointments and feedback; the knowledge base; the assignment registry and the SLA
policy — three blueprints (one per resource group in the OpenAPI document), thin calls.

Each view checks the request's JSON types (marshmallow; the service checks the values and names
every bad field in one 422), checks that a staff id it is given names an active staff member,
adds who is asking (``actor``), calls one RPC (docs/rpc-contracts.md, section "service_desk")
and dumps the answer through a schema. The service's NotFound/Conflict/InvalidInput become
404/409/422 with their details (crm_gateway.errors).

Who may call what is in ``permissions.ROUTES``. Which tickets a caller reaches is
``crm_gateway.scopes``: a customer manager those of their customers, a supervisor their
team's; the service desk's own staff (agents, technicians) every ticket.
"""
from flask_smorest import Blueprint

from crm_kit.errors import InvalidInput, NotFound
from crm_gateway import rpc, scopes
from crm_gateway.auth import staff_directory
from crm_gateway.blueprints import (AUTH_ERRORS, RPC_ERRORS, actor, error_responses,
                                     given_filters, require_active_staff)
from crm_gateway.schemas.service_desk import (
    AgentInSchema, AgentRegistrySchema, AgentSchema, AppointmentInSchema, AppointmentSchema,
    ArticleCreateSchema, ArticlePageSchema, ArticleQuerySchema, ArticleSchema,
    ArticleSearchQuerySchema, ArticleSearchSchema, CommentInSchema, CommentSchema,
    FeedbackInSchema, ReopenInSchema, SlaPolicyInSchema, SlaPolicySchema, TicketAssignInSchema,
    TicketCreateSchema, TicketPageSchema, TicketQuerySchema, TicketSchema,
    TicketStatusInSchema, TicketToArticleInSchema,
)

SERVICE_DESK = "service_desk"
API = "/api/v1"

tickets_blp = Blueprint("tickets", __name__, url_prefix=API,
                        description="Tickets (工单), the service desk: repairs, complaints, "
                                    "consultations, suggestions, cleaning — SLA, assignment, "
                                    "workflow, comments, appointments, feedback")
kb_blp = Blueprint("knowledge base", __name__, url_prefix=API,
                   description="The knowledge base (知识库), the service desk: articles, "
                               "search, articles from solved tickets")
service_desk_settings_blp = Blueprint("service desk settings", __name__, url_prefix=API,
                                      description="The service desk's settings: the "
                                                  "assignment registry (who takes which "
                                                  "tickets) and the SLA policy")

BLUEPRINTS = (tickets_blp, kb_blp, service_desk_settings_blp)


def _page(method, query, names):
    return rpc.call(SERVICE_DESK, method, given_filters(query, names), query["page"],
                    query["per_page"])


# ================================================================ tickets

@tickets_blp.route("/tickets", methods=["POST"])
@tickets_blp.arguments(TicketCreateSchema)
@tickets_blp.response(201, TicketSchema)
@error_responses(tickets_blp, *AUTH_ERRORS, *RPC_ERRORS)
def create_ticket(data):
    """Open a ticket (``new``) for an existing customer: answers it with its SLA targets
    (``sla.first_response_due``, ``sla.resolution_due``) and the knowledge-base articles that
    look like its description (``suggested_articles``, best first). The service assigns it
    to a registered agent when one fits (then ``assigned``). An unknown customer, unit or
    lease → 422 naming the field."""
    with scopes.references(data, customer_id="customer", lease_id="lease") as body:
        return rpc.call(SERVICE_DESK, "create_ticket", body, actor())


@tickets_blp.route("/tickets", methods=["GET"])
@tickets_blp.arguments(TicketQuerySchema, location="query")
@tickets_blp.response(200, TicketPageSchema)
@error_responses(tickets_blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_tickets(query):
    """Tickets by status, type, assignee, customer, priority, channel, district, number and
    ``breached`` (an SLA target missed, now or in the past); the newest first, without
    history, comments or suggestions."""
    filters = given_filters(query, ("status", "type", "assignee_id", "customer_id", "breached",
                                    "priority", "channel", "district", "number"))
    return rpc.call(SERVICE_DESK, "list_tickets", scopes.by_customer(filters), query["page"],
                    query["per_page"])


@tickets_blp.route("/tickets/<ticket_id>", methods=["GET"])
@tickets_blp.response(200, TicketSchema)
@error_responses(tickets_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def get_ticket(ticket_id):
    """One ticket with its ``history`` (every change: who, when), ``comments`` and
    ``suggested_articles``."""
    return scopes.fetch("ticket", ticket_id)


@tickets_blp.route("/tickets/<ticket_id>/assign", methods=["POST"])
@tickets_blp.arguments(TicketAssignInSchema)
@tickets_blp.response(200, TicketSchema)
@error_responses(tickets_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def assign_ticket(data, ticket_id):
    """Give the ticket to a staff member (an active one, else 422 on ``assignee_id``); a new
    ticket becomes ``assigned``. 409 when the ticket is closed."""
    assignee_id = data.get("assignee_id")
    require_active_staff("assignee_id", assignee_id)
    scopes.require("ticket", ticket_id)
    return rpc.call(SERVICE_DESK, "assign_ticket", ticket_id, assignee_id, actor())


@tickets_blp.route("/tickets/<ticket_id>/status", methods=["POST"])
@tickets_blp.arguments(TicketStatusInSchema)
@tickets_blp.response(200, TicketSchema)
@error_responses(tickets_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def change_ticket_status(data, ticket_id):
    """Move the ticket along its workflow (``in_progress``, ``awaiting_customer``,
    ``resolved``, ``closed`` …) with an optional ``note``; a transition the workflow does not
    allow → 409. Recorded in the ticket's history."""
    scopes.require("ticket", ticket_id)
    return rpc.call(SERVICE_DESK, "change_ticket_status", ticket_id, data.get("status"),
                    data.get("note"), actor())


@tickets_blp.route("/tickets/<ticket_id>/comments", methods=["POST"])
@tickets_blp.arguments(CommentInSchema)
@tickets_blp.response(201, CommentSchema)
@error_responses(tickets_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def add_comment(data, ticket_id):
    """A comment on the ticket by the caller (a staff member's first reply meets the
    first-response target)."""
    scopes.require("ticket", ticket_id)
    return rpc.call(SERVICE_DESK, "add_comment", ticket_id, data.get("body"), actor())


@tickets_blp.route("/tickets/<ticket_id>/appointment", methods=["POST"])
@tickets_blp.arguments(AppointmentInSchema)
@tickets_blp.response(201, AppointmentSchema)
@error_responses(tickets_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def book_appointment(data, ticket_id):
    """Book an on-site visit (上门) for the ticket: the technician (an active staff member;
    default set by the service) already booked at an overlapping time → 409."""
    require_active_staff("technician_id", data.get("technician_id"))
    scopes.require("ticket", ticket_id)
    return rpc.call(SERVICE_DESK, "book_appointment", ticket_id, data, actor())


@tickets_blp.route("/tickets/<ticket_id>/feedback", methods=["POST"])
@tickets_blp.arguments(FeedbackInSchema)
@tickets_blp.response(200, TicketSchema)
@error_responses(tickets_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def record_feedback(data, ticket_id):
    """Record the customer's satisfaction (``rating`` 1-5, ``comment``) with a resolved or
    closed ticket, once (409 otherwise); answers the ticket with its ``feedback``."""
    scopes.require("ticket", ticket_id)
    return rpc.call(SERVICE_DESK, "record_feedback", ticket_id, data, actor())


@tickets_blp.route("/tickets/<ticket_id>/reopen", methods=["POST"])
@tickets_blp.arguments(ReopenInSchema)
@tickets_blp.response(200, TicketSchema)
@error_responses(tickets_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def reopen_ticket(data, ticket_id):
    """Reopen a resolved or closed ticket with a ``reason`` (``reopened``; 409 otherwise)."""
    scopes.require("ticket", ticket_id)
    return rpc.call(SERVICE_DESK, "reopen_ticket", ticket_id, data.get("reason"), actor())


# ================================================================ knowledge base

@kb_blp.route("/kb/articles", methods=["POST"])
@kb_blp.arguments(ArticleCreateSchema)
@kb_blp.response(201, ArticleSchema)
@error_responses(kb_blp, *AUTH_ERRORS, *RPC_ERRORS)
def create_article(data):
    """A knowledge-base article: a ``symptom`` and its ``solution``, with ``tags``."""
    return rpc.call(SERVICE_DESK, "create_article", data, actor())


@kb_blp.route("/kb/articles", methods=["GET"])
@kb_blp.arguments(ArticleQuerySchema, location="query")
@kb_blp.response(200, ArticlePageSchema)
@error_responses(kb_blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_articles(query):
    """Articles by tag, part of the title or the ticket they were written from; the newest
    first (``GET /kb/search`` ranks by relevance)."""
    return _page("list_articles", query, ("tag", "q", "source_ticket_id"))


@kb_blp.route("/kb/articles/<article_id>", methods=["GET"])
@kb_blp.response(200, ArticleSchema)
@error_responses(kb_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def get_article(article_id):
    """One article."""
    return rpc.call(SERVICE_DESK, "get_article", article_id)


@kb_blp.route("/kb/search", methods=["GET"])
@kb_blp.arguments(ArticleSearchQuerySchema, location="query")
@kb_blp.response(200, ArticleSearchSchema)
@error_responses(kb_blp, *AUTH_ERRORS, *RPC_ERRORS)
def search_articles(query):
    """The articles that best match the words (Chinese or not) with their ``score``, best
    first, at most ``limit``."""
    hits = rpc.call(SERVICE_DESK, "search_articles", query["q"], query["limit"])
    return {"query": query["q"], "items": hits}


@kb_blp.route("/tickets/<ticket_id>/to-article", methods=["POST"])
@kb_blp.arguments(TicketToArticleInSchema)
@kb_blp.response(201, ArticleSchema)
@error_responses(kb_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def ticket_to_article(data, ticket_id):
    """Turn a solved ticket into an article (``source_ticket_id``): the given fields, the rest
    from the ticket."""
    scopes.require("ticket", ticket_id)
    return rpc.call(SERVICE_DESK, "ticket_to_article", ticket_id, data, actor())


# ================================================================ settings

@service_desk_settings_blp.route("/service-desk/agents", methods=["GET"])
@service_desk_settings_blp.response(200, AgentRegistrySchema)
@error_responses(service_desk_settings_blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_agents():
    """The assignment registry: who takes new tickets automatically, of which types, in which
    districts, how many open at most, and their ``open_tickets`` now; by staff id."""
    return {"items": rpc.call(SERVICE_DESK, "list_agents")}


@service_desk_settings_blp.route("/service-desk/agents/<staff_id>", methods=["PUT"])
@service_desk_settings_blp.arguments(AgentInSchema)
@service_desk_settings_blp.response(200, AgentSchema)
@error_responses(service_desk_settings_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def set_agent(data, staff_id):
    """Register a staff member as an agent, or change or deactivate (``active: false``) their
    entry. No such staff member → 404; a deactivated one may only be set inactive (422 on
    ``staff_id``); ``supervisor_id`` must be an active staff member."""
    staff = staff_directory().get(staff_id)
    if staff is None:
        raise NotFound(f"No staff member {staff_id}.", {"staff_id": staff_id})
    if not staff.active and data.get("active") is not False:
        raise InvalidInput({"staff_id": ["is not an active staff member"]})
    require_active_staff("supervisor_id", data.get("supervisor_id"))
    return rpc.call(SERVICE_DESK, "set_agent", staff_id, data, actor())


@service_desk_settings_blp.route("/service-desk/sla-policy", methods=["GET"])
@service_desk_settings_blp.response(200, SlaPolicySchema)
@error_responses(service_desk_settings_blp, *AUTH_ERRORS, *RPC_ERRORS)
def get_sla_policy():
    """The SLA targets per ticket type and priority, and the business calendar they count in."""
    return rpc.call(SERVICE_DESK, "get_sla_policy")


@service_desk_settings_blp.route("/service-desk/sla-policy", methods=["PUT"])
@service_desk_settings_blp.arguments(SlaPolicyInSchema)
@service_desk_settings_blp.response(200, SlaPolicySchema)
@error_responses(service_desk_settings_blp, *AUTH_ERRORS, *RPC_ERRORS)
def set_sla_policy(data):
    """Change SLA targets or the calendar; answers the policy in force (new tickets only)."""
    return rpc.call(SERVICE_DESK, "set_sla_policy", data, actor())
