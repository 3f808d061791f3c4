"""Review sentiment (评价情感) with the 70% rule of [000]: a review is positive when at least 70%
of its opinionated content is positive, negative when at least 70% is negative, else neutral.

How a review is read (Chinese and English, no model, no dependency):

1. **Clauses.** The text is split at ``。！？!?.,，；;`` (and ``、…~`` and line breaks); each clause
   is one unit of content.
2. **Terms.** Each clause is scanned left to right for the terms of a small lexicon
   (``POSITIVE``, ``NEGATIVE``, ``NEGATORS``, and ``NEUTRAL`` phrases that only mask words
   which would otherwise be misread, e.g. 好像 "seems", 快递 "courier", 尽快 "as soon as
   possible", 差不多 "about"). At each place the longest term wins, so 不错 (positive) beats
   不 + 错, and 没问题 is read as a whole where listed. English terms match whole words,
   case-insensitively ("no" in "piano" is nothing). The terms are compiled into one trie-shaped
   regex, so a review costs microseconds.
3. **Negation.** A negator (不, 没, 没有, 未, 别, 无, 并不…; not, no, never, n't…) flips the
   next sentiment term of the same clause when at most ``NEGATION_REACH`` units (a CJK character
   or a latin word) stand between them: 不满意 → negative, 不慢 → positive, 不太好 → negative,
   "not bad" → positive, "no problem" → positive. A negator flips one term only.
4. **Clause polarity.** positive terms − negative terms: > 0 positive, < 0 negative, 0 (or no
   term) not opinionated.
5. **The 70% rule** over the opinionated clauses (integer arithmetic, so 7 of 10 is exactly
   70%): positive if 10·positive ≥ 7·(positive + negative), negative if 10·negative ≥
   7·(positive + negative), else neutral.
6. **No opinion in the text.** When no clause is opinionated (or there is no comment) and a
   rating is given, the rating decides: 4-5 positive, 3 neutral, 1-2 negative; with neither,
   the review is neutral. The clause counts returned are then 0 and 0.

The lexicon is deliberately small and readable; extend it here (tests in
``tests/test_sentiment.py`` pin the behaviour).
"""
import math
import re
from functools import lru_cache

#: positive terms (Chinese words and phrases, English words)
POSITIVE = (
    # Chinese
    "满意", "好", "很好", "挺好", "不错", "棒", "赞", "点赞", "优秀", "专业", "及时", "快", "迅速",
    "高效", "耐心", "热情", "周到", "细心", "认真", "负责", "干净", "整洁", "舒适", "舒服",
    "方便", "便宜", "划算", "实惠", "安静", "温馨", "感谢", "谢谢", "喜欢", "推荐", "贴心",
    "友好", "礼貌", "准时", "放心", "靠谱", "到位", "给力", "完美", "愉快", "满分", "修好",
    "解决", "解决了", "已解决", "问题解决了", "问题已解决", "解决了问题", "没问题", "好评", "惊喜",
    "用心", "诚信", "透明", "清楚", "合理",
    # English
    "good", "great", "excellent", "nice", "helpful", "friendly", "quick", "quickly", "fast",
    "fixed", "clean", "satisfied", "happy", "love", "loved", "recommend", "thanks", "thank",
    "professional", "polite", "responsive", "perfect", "comfortable", "quiet", "convenient",
    "patient", "efficient", "resolved", "prompt", "promptly", "awesome", "wonderful",
    "amazing", "reasonable", "fair", "kind", "solved",
)
#: negative terms
NEGATIVE = (
    # Chinese
    "差", "很差", "太差", "慢", "太慢", "不满", "失望", "糟糕", "脏", "乱", "吵", "贵", "太贵",
    "坑", "敷衍", "拖", "拖延", "推诿", "推脱", "恶劣", "投诉", "问题", "坏", "坏了", "漏水",
    "故障", "生气", "垃圾", "骗", "冷漠", "粗鲁", "迟到", "难", "难用", "麻烦死", "很麻烦",
    "太麻烦", "不合理", "没人", "没人管", "没人来", "没人理", "无人", "不靠谱", "无语", "差评", "不爽",
    "烦", "等了好久", "好久", "乱收费", "多收", "扣钱", "押金不退", "不退", "霉", "发霉",
    "异味", "臭", "噪音", "蟑螂", "退租", "错", "算错", "错误",
    # English
    "bad", "poor", "slow", "slowly", "dirty", "rude", "terrible", "awful", "noisy", "broken",
    "expensive", "late", "problem", "problems", "issue", "issues", "disappointed",
    "disappointing", "unhappy", "dissatisfied", "angry", "worst", "leak", "leaking", "leaks",
    "complaint", "complain", "ignored", "unresolved", "unprofessional", "delay", "delayed",
    "horrible", "useless", "overcharged", "mold", "smell", "smelly", "wrong", "nobody", "no one",
)
#: words that flip the next sentiment term of their clause
NEGATORS = (
    "不", "没", "没有", "未", "别", "无", "并不", "从不", "从没", "从来没", "毫不", "不是",
    "not", "no", "never", "don't", "doesn't", "didn't", "isn't", "wasn't", "aren't", "weren't",
    "can't", "cannot", "won't", "hardly", "dont", "didnt", "isnt", "wasnt", "nothing",
)
#: phrases that are read as nothing, so the characters inside them are not misread
NEUTRAL = (
    "好像", "好几", "最好", "只好", "好不容易", "快递", "尽快", "赶快", "快点", "差不多", "差点",
    "难道", "乱码", "不好意思", "麻烦您", "麻烦你", "麻烦师傅", "有没有", "是不是", "能不能",
    "会不会", "要不要", "好的话", "问一下", "不知道", "出差", "差价", "时差", "快要", "快到",
    "贵公司", "拖地", "拖鞋", "好多",
)
#: how many units (CJK characters or latin words) may stand between a negator and its term
NEGATION_REACH = 3

CLAUSE_BREAK = re.compile(r"[。！？!?.,，；;、…~\n\r]+")
_LATIN_CHAR = "a-z'"
_LATIN_WORD = re.compile(f"[{_LATIN_CHAR}]")
_GAP_UNITS = re.compile(r"[a-z']+|[^\sa-z'\d\W]|\d+")


_KIND = {}
for _terms, _kind in ((NEUTRAL, "neutral"), (NEGATORS, "negator"), (NEGATIVE, "negative"),
                      (POSITIVE, "positive")):
    for _term in _terms:
        _KIND.setdefault(_term, _kind)


def _trie_pattern(terms):
    """One regex over every term, as a trie (fast: each position fails on its first character)
    that takes the longest term at a position; a latin term must end a word (the start of the
    word is checked by the caller)."""
    trie = {}
    for term in terms:
        node = trie
        for character in term:
            node = node.setdefault(character, {})
        node[""] = term.isascii()

    def build(node):
        branches = [re.escape(character) + build(child)
                    for character, child in sorted(node.items()) if character]
        if "" in node:  # a term ends here; longer ones are tried first
            branches.append(f"(?![{_LATIN_CHAR}])" if node[""] else "")
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return re.compile(build(trie))


_TERMS = _trie_pattern(_KIND)


def _units(gap):
    """CJK characters and latin words between two terms."""
    return len(_GAP_UNITS.findall(gap))


def clause_polarity(clause):
    """+1, −1 or 0 for one clause (see the module's rules 2-4)."""
    clause = clause.lower()
    score = 0
    negator_end = None  # where the pending negator ended, if one is pending
    for match in _TERMS.finditer(clause):
        start = match.start()
        if start and clause[start].isascii() and _LATIN_WORD.match(clause, start - 1):
            continue  # a latin term inside a word ("no" in "piano")
        kind = _KIND[match.group(0)]
        if kind == "neutral":
            continue
        if kind == "negator":
            negator_end = match.end()
            continue
        value = 1 if kind == "positive" else -1
        if negator_end is not None:
            if _units(clause[negator_end:match.start()]) <= NEGATION_REACH:
                value = -value
            negator_end = None
        score += value
    return (score > 0) - (score < 0)


def clauses(text):
    return [part for part in CLAUSE_BREAK.split(text) if part.strip()]


def from_rating(rating):
    """The sentiment a bare rating stands for: 4-5 positive, 3 neutral, 1-2 negative."""
    if rating is None:
        return "neutral"
    return "positive" if rating >= 4 else "negative" if rating <= 2 else "neutral"


def _clean_rating(rating):
    if rating is None:
        return None
    try:
        value = float(rating)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else int(value)


def _clean_text(text):
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    return str(text)


@lru_cache(maxsize=65536)
def _classify(text, rating):
    positive = negative = 0
    for clause in clauses(text):
        polarity = clause_polarity(clause)
        positive += polarity > 0
        negative += polarity < 0
    opinionated = positive + negative
    if opinionated == 0:
        return from_rating(rating), 0, 0
    if 10 * positive >= 7 * opinionated:
        sentiment = "positive"
    elif 10 * negative >= 7 * opinionated:
        sentiment = "negative"
    else:
        sentiment = "neutral"
    return sentiment, positive, negative


def classify(text, rating=None):
    """``{"sentiment": positive|neutral|negative, "positive": n, "negative": n}`` for a review:
    ``text`` (may be None or empty) and its 1-5 ``rating`` (optional); counts are of clauses."""
    sentiment, positive, negative = _classify(_clean_text(text), _clean_rating(rating))
    return {"sentiment": sentiment, "positive": positive, "negative": negative}


def review_sentiment(tickets, date_from=None, date_to=None):
    """``{items: [{ticket_id, rating, sentiment, positive, negative}], totals: {reviews,
    positive, neutral, negative}}`` for the reviews given in the period: tickets with a comment
    or a rating whose ``rated_at`` (or, when missing, ``created_at``) falls in it, newest first.
    Periods as in ``reports`` (business dates, inclusive)."""
    from analytics_service import reports  # reports uses this module: import when called

    comments = tickets["comment"].astype("object")
    ratings = tickets["rating"].astype("object")
    reviewed = ((comments.notna() & (comments.astype(str).str.strip() != ""))
                | ratings.notna()).to_numpy(bool)
    when = reports._utc(tickets["rated_at"]).fillna(reports._utc(tickets["created_at"]))
    in_period = reports._within(when, reports._bounds(date_from, date_to))
    chosen = tickets.assign(_when=when)[reviewed & in_period].sort_values(
        ["_when", "ticket_id"], ascending=[False, True], kind="stable")
    totals = {"reviews": len(chosen), "positive": 0, "neutral": 0, "negative": 0}
    items = []
    for ticket_id, comment, rating in zip(chosen["ticket_id"], chosen["comment"].astype("object"),
                                          chosen["rating"].astype("object")):
        result = classify(comment, rating)
        totals[result["sentiment"]] += 1
        rating = _clean_rating(rating)
        items.append({"ticket_id": str(ticket_id), "rating": rating, **result})
    return {"items": items, "totals": totals}
