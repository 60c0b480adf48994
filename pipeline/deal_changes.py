"""The outbox of the domain event ``deal_changed`` (``pipeline.events``): a model of
the pipeline app, in a module of its own (``pipeline.models`` imports it)."""

from django.conf import settings
from django.db import models

from pipeline.models import Deal


class DealChange(models.Model):
    """A deal that changed and whose listeners have not caught up yet: the outbox
    of ``deal_changed`` (``pipeline.events``).

    Written in the writer's own transaction, so a change that commits is never
    lost, whatever happens to the process after the commit; one row per deal
    however many times it changed (an upsert), so a burst of changes is a
    bounded amount of work. The worker that catches up claims rows by
    compare-and-set (``claimed_until``, a lease a killed worker lets go of) and
    deletes a row only if the deal did not change again meanwhile
    (``changed_at`` still the one it claimed).
    """

    deal = models.OneToOneField(Deal, primary_key=True, on_delete=models.CASCADE, related_name="+")
    changed_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["changed_at"], name="deal_change_oldest_first")]

    def __str__(self) -> str:
        return f"Deal #{self.deal_id} changed at {self.changed_at:%Y-%m-%d %H:%M:%S}"
