"""The knowledge base (知识库): articles of symptom → solution, and relevance search.

- Search ranks with BM25 (``rank_bm25``) over title + symptom + solution + tags, tokenised by
  jieba's search mode, so Chinese and English both work ("空调 漏水", "air conditioner leaks").
  The title counts twice (it says what the article is about). Tokens are lower-cased; blanks,
  punctuation and a few function words are dropped. Only articles with a score above 0 (sharing
  a term with the query) are returned.
- The IDF is Lucene's ``log(1 + (N - n + 0.5) / (n + 0.5))``, always positive: rank_bm25's
  Okapi IDF is 0 or negative for a term in half of the articles or more, which on a small
  knowledge base hides the only matching article.
- The index lives in memory, one per database per process, and is rebuilt lazily when the
  articles changed (change check: count + latest ``updated_at``); only new or changed articles
  are tokenised again. ``warm_up()`` loads jieba's dictionary at service start.
"""
import logging
import math
import re
import threading
import uuid

import jieba
from rank_bm25 import BM25Okapi
from sqlalchemy import func, select

from crm_kit.envelope import now as utc_now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from service_desk_service import schemas, vocabulary as v
from service_desk_service.models import Article, Ticket, TicketComment

jieba.setLogLevel(logging.WARNING)

TITLE_WEIGHT = 2
WORD = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)
STOPWORDS = frozenset(
    "的 了 是 在 和 与 或 也 就 都 而 及 着 吗 呢 吧 啊 我 你 他 她 它 我们 你们 有 没有 不 很 "
    "a an the of to in on at for and or is are was were be been it this that with my our "
    "your i you he she we they not no".split())


def warm_up():
    """Load jieba's dictionary now (about a second), not on the first request."""
    jieba.initialize()


def tokenize(text):
    tokens = []
    for token in jieba.cut_for_search((text or "").lower()):
        token = token.strip()
        if token and WORD.search(token) and token not in STOPWORDS:
            tokens.append(token)
    return tokens


def article_tokens(article):
    return (tokenize(article.title) * TITLE_WEIGHT + tokenize(article.symptom)
            + tokenize(article.solution) + tokenize(" ".join(article.tags or [])))


class _Bm25(BM25Okapi):
    def _calc_idf(self, nd):
        for word, freq in nd.items():
            self.idf[word] = math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))


class Index:
    """One database's articles, tokenised and ranked."""

    def __init__(self):
        self.signature = None
        self.tokens = {}  # article id → (updated_at, tokens)
        self.ids = []
        self.titles = {}
        self.bm25 = None
        self.lock = threading.Lock()

    def refresh(self, session):
        signature = tuple(session.execute(
            select(func.count(Article.id), func.max(Article.updated_at))).one())
        if signature == self.signature:
            return
        with self.lock:
            stamps = dict(session.execute(select(Article.id, Article.updated_at)).all())
            stale = [i for i, stamp in stamps.items()
                     if i not in self.tokens or self.tokens[i][0] != stamp]
            for start in range(0, len(stale), 500):
                for article in session.scalars(select(Article).where(
                        Article.id.in_(stale[start:start + 500]))).all():
                    self.tokens[article.id] = (article.updated_at, article_tokens(article))
                    self.titles[article.id] = article.title
            for gone in set(self.tokens) - set(stamps):
                del self.tokens[gone]
                self.titles.pop(gone, None)
            self.ids = sorted(self.tokens)
            corpus = [self.tokens[i][1] or ["\0"] for i in self.ids]
            self.bm25 = _Bm25(corpus) if corpus else None
            self.signature = signature

    def search(self, session, query, limit):
        self.refresh(session)
        terms = list(dict.fromkeys(tokenize(query)))
        if self.bm25 is None or not terms:
            return []
        scores = self.bm25.get_scores(terms)
        ranked = sorted((i for i in range(len(self.ids)) if scores[i] > 0),
                        key=lambda i: (-scores[i], self.ids[i]))[:limit]
        return [(self.ids[i], round(float(scores[i]), 4)) for i in ranked]


_indexes = {}
_indexes_lock = threading.Lock()


def index_for(session):
    """The in-memory index of this session's database (one per database URL per process)."""
    key = str(session.get_bind().url)
    with _indexes_lock:
        return _indexes.setdefault(key, Index())


# -- articles ------------------------------------------------------------------------------
def to_dict(article):
    return {"id": article.id, "title": article.title, "symptom": article.symptom,
            "solution": article.solution, "tags": list(article.tags or []),
            "source_ticket_id": article.source_ticket_id, "created_by": article.created_by,
            "created_at": article.created_at.isoformat(),
            "updated_at": article.updated_at.isoformat()}


def get(session, article_id):
    article = session.get(Article, article_id)
    if article is None:
        raise NotFound(f"article {article_id} does not exist", {"article_id": article_id})
    return article


def create(session, data, actor, source_ticket_id=None):
    data = schemas.load(schemas.article_schema, data)
    moment = utc_now()
    article = Article(id=str(uuid.uuid4()), title=data["title"].strip(),
                      symptom=data["symptom"].strip(), solution=data["solution"].strip(),
                      tags=sorted({t.strip() for t in data["tags"]}),
                      source_ticket_id=source_ticket_id, created_by=(actor or {}).get("id"),
                      created_at=moment, updated_at=moment)
    session.add(article)
    session.flush()
    return article


def search_list(session, filters, page=1, per_page=50):
    """Articles newest first, by ``tag``, ``source_ticket_id`` or a plain substring ``q``
    of the title (use ``search`` for relevance)."""
    filters = schemas.load_filters(schemas.article_filter_schema, filters)
    query = select(Article)
    if filters.get("source_ticket_id"):
        query = query.where(Article.source_ticket_id == filters["source_ticket_id"])
    if filters.get("q"):
        query = query.where(Article.title.contains(filters["q"], autoescape=True))
    rows = session.scalars(query.order_by(Article.created_at.desc(), Article.id)).all()
    if filters.get("tag"):  # tags are a JSON list: filtered here, the same on both databases
        rows = [a for a in rows if filters["tag"] in (a.tags or [])]
    total = len(rows)
    rows = rows[(page - 1) * per_page:page * per_page]
    return {"items": [to_dict(a) for a in rows], "total": total, "page": page,
            "per_page": per_page}


def search(session, query, limit=10):
    """``[{article, score}]`` best first (score > 0 only)."""
    data = schemas.load(schemas.search_schema, {"query": query if query is not None else "",
                                                "limit": limit})
    found = index_for(session).search(session, data["query"], data["limit"])
    articles = {a.id: a for a in session.scalars(
        select(Article).where(Article.id.in_([i for i, _ in found]))).all()}
    return [{"article": to_dict(articles[i]), "score": score}
            for i, score in found if i in articles]


def suggest(session, text, limit=5):
    """``[{id, title, score}]``: the articles most similar to a ticket's description."""
    index = index_for(session)
    return [{"id": i, "title": index.titles.get(i), "score": score}
            for i, score in index.search(session, text, limit)]


def from_ticket(session, ticket_id, data, actor):
    """An article from a resolved or closed ticket (Conflict otherwise, and for a second
    article of the same ticket). Defaults: title = the type and the description's start,
    symptom = the description, solution = the resolution note, else the last comment,
    tags = [type]."""
    overrides = schemas.load(schemas.ticket_article_schema, data or {})
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} does not exist", {"ticket_id": ticket_id})
    if ticket.status not in v.DONE_STATUSES:
        raise Conflict(f"ticket {ticket.number} is {ticket.status}; only a resolved or closed "
                       "ticket becomes an article", {"status": ticket.status})
    existing = session.scalars(select(Article).where(
        Article.source_ticket_id == ticket.id)).first()
    if existing is not None:
        raise Conflict(f"ticket {ticket.number} already became article {existing.id}",
                       {"existing_id": existing.id})
    solution = overrides.get("solution") or ticket.resolution_note
    if not solution:
        last = session.scalars(select(TicketComment).where(
            TicketComment.ticket_id == ticket.id, TicketComment.body != "")
            .order_by(TicketComment.id.desc()).limit(1)).first()
        solution = last.body if last else None
    if not solution:
        raise InvalidInput({"solution": ["the ticket has no resolution note or comment; "
                                         "give the solution"]})
    symptom = overrides.get("symptom") or ticket.description
    if not symptom:
        raise InvalidInput({"symptom": ["the ticket's description was erased; give the symptom"]})
    first_line = symptom.strip().splitlines()[0]
    title = overrides.get("title") or f"[{ticket.type}] {first_line[:60]}"
    return create(session, {"title": title, "symptom": symptom, "solution": solution,
                            "tags": overrides.get("tags") or [ticket.type]},
                  actor, source_ticket_id=ticket.id)
