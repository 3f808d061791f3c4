"""Reactions to the customer service: merged customers, erased customers."""
from service_desk_service import tickets
from service_desk_service.reactions import customer_erased, customer_merged

from service_desk_fixtures import ACTOR, SUPERVISOR, customer, new_ticket


def test_merge_moves_tickets_to_the_survivor(session):
    ticket = new_ticket(session, cust=customer("dup"), customer_id="dup")
    kept = new_ticket(session, cust=customer("other"), customer_id="other")
    customer_merged(session, {"merged_id": "dup", "survivor_id": "cust-1"})
    session.expire_all()
    assert tickets.get(session, ticket.id).customer_id == "cust-1"
    assert tickets.get(session, kept.id).customer_id == "other"


def test_erasure_blanks_free_text_and_keeps_the_rest(session):
    ticket = new_ticket(session, description="我是张三，手机13800138000，空调坏了")
    tickets.assign(session, ticket.id, "tech-a", SUPERVISOR)
    tickets.add_comment(session, ticket.id, "张三说下午在家", ACTOR)
    tickets.change_status(session, ticket.id, "resolved", "给张三换了遥控器", ACTOR)
    tickets.record_feedback(session, ticket.id, {"rating": 1, "comment": "张三很不满意"}, ACTOR)
    other = new_ticket(session, cust=customer("cust-2"), customer_id="cust-2")
    customer_erased(session, {"customer_id": "cust-1"})
    session.expire_all()
    data = tickets.detail(session, ticket.id)
    assert data["description"] == "" and data["resolution_note"] is None
    assert [c["body"] for c in data["comments"]] == [""]
    assert data["feedback"]["comment"] is None and data["feedback"]["rating"] == 1
    assert (data["status"], data["type"], data["customer_id"]) == ("resolved", "repair",
                                                                   "cust-1")
    assert len(data["history"]) >= 3
    assert tickets.get(session, other.id).description != ""
    assert data["suggested_articles"] == []
