"""Customer segmentation by clustering ([001] 篇1 steps 4–5): a run of ``clusters`` over the
chosen features of the current customers, saved with its evaluation and members."""
import uuid
from sqlalchemy import insert, select

from analytics_service import clusters, frames, recompute, schemas
from analytics_service.models import ClusterMember, ClusterRun
from analytics_service.clock import business_today
from crm_kit.db import paginate
from crm_kit.envelope import now
from crm_kit.errors import NotFound


def to_dict(run):
    return {"id": run.id, "k": run.k, "features": run.features, "silhouette": run.silhouette,
            "evaluation": run.evaluation, "customers": run.customers,
            "created_by": run.created_by, "created_at": run.created_at.isoformat()}


def run(session, data, actor):
    data = schemas.load(schemas.cluster_request, data)
    run_id = recompute.current_run_id(session)
    score_frame = frames.scores(session, run_id) if run_id is not None else None
    features = clusters.feature_frame(
        customers=frames.customers(session), leases=frames.leases(session),
        payments=frames.payments(session), tickets=frames.tickets(session),
        scores=score_frame, features=data["features"], as_of=business_today())
    labels, evaluation = clusters.run(features, k=data["k"], k_min=data["k_min"],
                                      k_max=data["k_max"])
    saved = ClusterRun(id=str(uuid.uuid4()), k=int(evaluation["k"]),
                       features=list(data["features"]), silhouette=evaluation.get("silhouette"),
                       evaluation=evaluation, customers=int(len(labels)),
                       created_by=(actor or {}).get("id"), created_at=now())
    session.add(saved)
    session.flush()
    session.execute(insert(ClusterMember), [
        {"run_id": saved.id, "customer_id": customer_id, "cluster": int(cluster)}
        for customer_id, cluster in labels.items()])
    return to_dict(saved)


def get(session, run_id):
    found = session.get(ClusterRun, run_id)
    if found is None:
        raise NotFound(f"cluster run {run_id} does not exist", {"run_id": run_id})
    return to_dict(found)


def search(session, page, per_page):
    return paginate(session, select(ClusterRun).order_by(ClusterRun.created_at.desc()), page,
                    per_page, to_dict)
