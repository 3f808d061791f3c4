"""The knowledge base: BM25 over jieba tokens, Chinese and English, suggestions, from tickets."""
import pytest

from crm_kit.errors import Conflict, InvalidInput, NotFound
from service_desk_service import knowledge, tickets

from service_desk_fixtures import ACTOR, SUPERVISOR, new_ticket

ARTICLES = [
    {"title": "空调漏水怎么办", "symptom": "空调室内机滴水，墙面潮湿",
     "solution": "清理排水管堵塞，检查冷凝水管坡度", "tags": ["空调", "维修"]},
    {"title": "热水器不出热水", "symptom": "燃气热水器打不着火，洗澡没有热水",
     "solution": "检查燃气阀门和电池，必要时报修", "tags": ["热水器"]},
    {"title": "Wi-Fi is slow", "symptom": "the wireless network drops in the bedroom",
     "solution": "restart the router and move it to the corridor", "tags": ["network"]},
    {"title": "门锁电池没电", "symptom": "智能门锁提示低电量，无法开门",
     "solution": "用应急钥匙开门，更换四节五号电池", "tags": ["门锁"]},
]


@pytest.fixture
def articles(session):
    return [knowledge.create(session, data, ACTOR) for data in ARTICLES]


def test_chinese_query_ranks_the_matching_article_first(session, articles):
    found = knowledge.search(session, "空调一直在漏水")
    assert found[0]["article"]["id"] == articles[0].id
    assert all(hit["score"] > 0 for hit in found)
    assert [h["score"] for h in found] == sorted((h["score"] for h in found), reverse=True)


def test_english_query_and_case(session, articles):
    found = knowledge.search(session, "ROUTER keeps dropping")
    assert [h["article"]["id"] for h in found] == [articles[2].id]


def test_no_match_no_results_and_limit(session, articles):
    assert knowledge.search(session, "停车位申请") == []
    assert knowledge.search(session, "") == []
    assert len(knowledge.search(session, "空调 热水器 门锁 router", limit=2)) == 2
    with pytest.raises(InvalidInput):
        knowledge.search(session, "空调", limit=0)


def test_title_weighs_more_than_the_body(session):
    body = knowledge.create(session, {"title": "入住须知", "symptom": "洗衣机怎么用",
                                      "solution": "看说明书", "tags": []}, ACTOR)
    title = knowledge.create(session, {"title": "洗衣机使用", "symptom": "不会用",
                                       "solution": "看说明书", "tags": []}, ACTOR)
    found = knowledge.search(session, "洗衣机")
    assert [h["article"]["id"] for h in found] == [title.id, body.id]


def test_index_follows_new_articles(session, articles):
    assert knowledge.search(session, "蟑螂") == []
    added = knowledge.create(session, {"title": "房间有蟑螂", "symptom": "厨房发现蟑螂",
                                       "solution": "预约灭虫服务", "tags": ["保洁"]}, ACTOR)
    assert knowledge.search(session, "蟑螂")[0]["article"]["id"] == added.id


def test_a_single_article_is_found(session):
    only = knowledge.create(session, ARTICLES[0], ACTOR)
    assert knowledge.search(session, "空调漏水")[0]["article"]["id"] == only.id


def test_new_ticket_suggests_up_to_five_similar_articles(session, articles):
    for n in range(6):
        knowledge.create(session, {"title": f"空调问题{n}", "symptom": "空调不制冷",
                                   "solution": "清洗滤网", "tags": []}, ACTOR)
    ticket, suggested = tickets.create(session, {
        "customer_id": "cust-1", "type": "repair", "channel": "phone",
        "description": "空调漏水"}, ACTOR, {"id": "cust-1", "district": None})
    assert len(suggested) == 5 and suggested[0]["id"] == articles[0].id
    assert set(suggested[0]) == {"id", "title", "score"}
    assert all(s["score"] > 0 for s in suggested)
    assert tickets.detail(session, ticket.id)["suggested_articles"][0]["id"] == articles[0].id


def test_articles_list_and_get(session, articles):
    page = knowledge.search_list(session, {"tag": "空调"})
    assert [a["id"] for a in page["items"]] == [articles[0].id]
    assert knowledge.search_list(session, {})["total"] == 4
    assert knowledge.to_dict(knowledge.get(session, articles[1].id))["title"] == "热水器不出热水"
    with pytest.raises(NotFound):
        knowledge.get(session, "nope")
    with pytest.raises(InvalidInput) as caught:
        knowledge.create(session, {"title": "", "symptom": "x"}, ACTOR)
    assert set(caught.value.details) == {"title", "solution"}


def test_resolved_ticket_becomes_an_article(session):
    ticket = new_ticket(session, description="卫生间下水道堵塞，水排不下去")
    with pytest.raises(Conflict):
        knowledge.from_ticket(session, ticket.id, None, ACTOR)  # not resolved
    tickets.assign(session, ticket.id, "tech-a", SUPERVISOR)
    tickets.add_comment(session, ticket.id, "用疏通器疏通后正常", ACTOR)
    tickets.change_status(session, ticket.id, "resolved", None, ACTOR)
    article = knowledge.to_dict(knowledge.from_ticket(session, ticket.id, None, ACTOR))
    assert article["symptom"] == "卫生间下水道堵塞，水排不下去"
    assert article["solution"] == "用疏通器疏通后正常"  # the last comment, no resolution note
    assert article["source_ticket_id"] == ticket.id and article["tags"] == ["repair"]
    assert article["title"].startswith("[repair] ")
    with pytest.raises(Conflict):
        knowledge.from_ticket(session, ticket.id, None, ACTOR)  # once per ticket
    assert knowledge.search(session, "下水道堵塞")[0]["article"]["id"] == article["id"]


def test_resolution_note_and_overrides(session):
    ticket = new_ticket(session)
    tickets.assign(session, ticket.id, "tech-a", SUPERVISOR)
    tickets.add_comment(session, ticket.id, "已联系租客", ACTOR)
    tickets.change_status(session, ticket.id, "resolved", "更换排水管", ACTOR)
    tickets.change_status(session, ticket.id, "closed", None, ACTOR)
    article = knowledge.from_ticket(session, ticket.id, {"title": "空调排水管更换",
                                                         "tags": ["空调"]}, ACTOR)
    assert (article.title, article.solution, article.tags) == ("空调排水管更换", "更换排水管",
                                                               ["空调"])
    bare = new_ticket(session)
    tickets.assign(session, bare.id, "tech-a", SUPERVISOR)
    tickets.change_status(session, bare.id, "resolved", None, ACTOR)
    with pytest.raises(InvalidInput) as caught:
        knowledge.from_ticket(session, bare.id, None, ACTOR)
    assert "solution" in caught.value.details
    with pytest.raises(NotFound):
        knowledge.from_ticket(session, "nope", None, ACTOR)
