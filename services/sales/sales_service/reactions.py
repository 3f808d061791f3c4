"""The sales service's reactions to the customer service's events.

- ``customer.merged``: everything sales holds of the merged customer (opportunities, viewings,
  leases, bills, payments, tasks) moves to the survivor.
- ``customer.erased``: nothing to do — sales keeps no personal data, only the customer's id,
  which stays so money records keep adding up.
"""
from sqlalchemy import update

from sales_service.models import Bill, Lease, Opportunity, Payment, Task, Viewing


def customer_merged(session, data):
    for model in (Opportunity, Viewing, Lease, Bill, Payment, Task):
        session.execute(update(model).where(model.customer_id == data["merged_id"])
                        .values(customer_id=data["survivor_id"]))
