"""Review sentiment: the 70% rule of [000] over clauses, negation, the rating when the text
gives no opinion, and the review_sentiment report."""
import math
from datetime import datetime, timezone

import pytest

from analytics_fixtures import add_customer, add_ticket, at
from analytics_service import frames, sentiment
from analytics_service.sentiment import classify


def review(positive, negative, neutral=0):
    """A review of whole clauses: ``positive`` × 很好, ``negative`` × 很差, ``neutral`` plain."""
    return "，".join(["服务很好"] * positive + ["态度很差"] * negative + ["我住三楼"] * neutral) + "。"


# -- the 70% rule --------------------------------------------------------------------------
def test_seven_of_ten_positive_clauses_is_positive():
    assert classify(review(7, 3)) == {"sentiment": "positive", "positive": 7, "negative": 3}


def test_six_of_ten_positive_clauses_is_neutral():
    assert classify(review(6, 4)) == {"sentiment": "neutral", "positive": 6, "negative": 4}


def test_seven_of_ten_negative_clauses_is_negative():
    assert classify(review(3, 7)) == {"sentiment": "negative", "positive": 3, "negative": 7}
    assert classify(review(4, 6))["sentiment"] == "neutral"


def test_only_opinionated_clauses_count():
    # 7 of 10 opinionated clauses are positive; five plain clauses change nothing
    assert classify(review(7, 3, neutral=5)) == {"sentiment": "positive", "positive": 7,
                                                 "negative": 3}
    assert classify(review(1, 0, neutral=9))["sentiment"] == "positive"


def test_clauses_split_at_chinese_and_english_punctuation():
    text = "维修很及时！管家很好？房间干净；价格太贵;服务不错.环境安静,网速慢"
    # positive: 及时, 很好, 干净, 不错, 安静 (5); negative: 太贵, 慢 (2) → 5/7 = 71% positive
    assert classify(text) == {"sentiment": "positive", "positive": 5, "negative": 2}


# -- negation ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("不满意", "negative"),
    ("很满意", "positive"),
    ("不错", "positive"),
    ("不慢", "positive"),
    ("慢", "negative"),
    ("不太好", "negative"),
    ("一点都不好", "negative"),
    ("不是很满意", "negative"),
    ("没问题", "positive"),
    ("没什么问题", "positive"),
    ("没有解决问题", "negative"),
    ("问题解决了", "positive"),
    ("没人来修", "negative"),
    ("不漏水了", "positive"),
    ("not bad", "positive"),
    ("Not good at all", "negative"),
    ("not very helpful", "negative"),
    ("no problems", "positive"),
    ("didn't respond, slow", "negative"),
    ("账单算错了", "negative"),
    ("the bill was wrong", "negative"),
    ("no one came", "negative"),
    ("the piano was good", "positive"),  # "no" inside a word is no negator
])
def test_negation(text, expected):
    assert classify(text)["sentiment"] == expected


def test_a_negator_too_far_from_the_term_does_not_flip_it():
    # 不 … four characters … 好: out of reach (NEGATION_REACH = 3)
    assert classify("不知道为什么他们服务好")["sentiment"] == "positive"


def test_a_negator_flips_one_term_only():
    # 没有 flips 及时 (negative); 态度好 is still positive: 1 of 2 → neutral
    assert classify("没有及时来，态度好")["sentiment"] == "neutral"
    # in one clause: −1 (不 及时) + 1 (热情) = 0 → no opinion → neutral
    assert classify("来得不及时但很热情") == {"sentiment": "neutral", "positive": 0, "negative": 0}


def test_words_that_only_look_like_opinions_are_not_read():
    for text in ("请尽快处理", "快递放门口", "好像是水管", "差不多三点到", "不好意思打扰了"):
        assert classify(text) == {"sentiment": "neutral", "positive": 0, "negative": 0}, text


# -- the rating ----------------------------------------------------------------------------
@pytest.mark.parametrize("rating, expected", [(5, "positive"), (4, "positive"), (3, "neutral"),
                                              (2, "negative"), (1, "negative")])
def test_a_rating_without_comment_decides(rating, expected):
    assert classify(None, rating) == {"sentiment": expected, "positive": 0, "negative": 0}
    assert classify("", rating)["sentiment"] == expected
    assert classify("已处理", rating)["sentiment"] == expected  # a comment with no opinion
    assert classify(None, float(rating))["sentiment"] == expected  # as a DataFrame holds it


def test_the_text_decides_over_the_rating():
    assert classify("管家很贴心", 1)["sentiment"] == "positive"
    assert classify("押金不退，乱收费", 5)["sentiment"] == "negative"


def test_nothing_at_all_is_neutral():
    assert classify(None) == {"sentiment": "neutral", "positive": 0, "negative": 0}
    assert classify(float("nan"), math.nan)["sentiment"] == "neutral"


def test_english_and_mixed_reviews():
    assert classify("Quick repair, friendly staff, thanks!")["sentiment"] == "positive"
    assert classify("The bill was wrong, nobody answered, slow and rude")["sentiment"] \
        == "negative"
    assert classify("管家很好, but the rent is too expensive")["sentiment"] == "neutral"


# -- the report ----------------------------------------------------------------------------
def test_review_sentiment_report(session):
    add_customer(session, "c1")
    first = add_ticket(session, "c1", "2025-01-02", rating=5, comment="维修很及时，管家态度很好",
                       rated_at=at("2025-01-05"))
    second = add_ticket(session, "c1", "2025-01-03", rating=2, rated_at=at("2025-01-20"))
    third = add_ticket(session, "c1", "2024-12-20", rating=4, comment="房租结算太乱了，押金不退",
                       rated_at=at("2025-01-10"))  # created before, reviewed in January
    add_ticket(session, "c1", "2025-01-04")  # no review
    add_ticket(session, "c1", "2025-01-04", rating=5, rated_at=at("2025-02-01"))  # February
    late = add_ticket(session, "c1", "2025-01-06", rating=3, comment="一般")
    late.rated_at = datetime(2025, 1, 31, 17, 0, tzinfo=timezone.utc)  # 1 Feb 01:00 in Chengdu
    session.flush()
    result = sentiment.review_sentiment(frames.tickets(session), "2025-01-01", "2025-01-31")
    assert result == {
        "items": [  # newest review first
            {"ticket_id": second.id, "rating": 2, "sentiment": "negative", "positive": 0,
             "negative": 0},
            {"ticket_id": third.id, "rating": 4, "sentiment": "negative", "positive": 0,
             "negative": 2},
            {"ticket_id": first.id, "rating": 5, "sentiment": "positive", "positive": 2,
             "negative": 0}],
        "totals": {"reviews": 3, "positive": 1, "neutral": 0, "negative": 2}}
    assert all(type(item["rating"]) is int for item in result["items"])


def test_an_empty_review_sentiment_report(session):
    assert sentiment.review_sentiment(frames.tickets(session), "2025-01-01", "2025-01-31") == {
        "items": [], "totals": {"reviews": 0, "positive": 0, "neutral": 0, "negative": 0}}
