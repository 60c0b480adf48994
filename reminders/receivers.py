"""How reminders hook into the apps below them, connected in ``RemindersConfig.ready``.

- the pipeline's domain event ``deal_changed``: the changed deals' reminders
  now, not at the next scan (the outbox says which deals; one drain task
  is queued at a time, however many deals changed);
- a leaver's handover (``pipeline.team``): their open reminders go with their deals;
- writes that bypass the services, and so the outbox: an edit in the Django
  admin (its log entry, written in the edit's transaction; an action's, one a
  row, see ``pipeline.admin.ActionsLikeEdits``) puts the deal in the outbox;
  a person's time zone or manager changing (their change history) makes their
  deals due now (``reminders.schedule``). There is no sweep to catch them later.
"""

from asgiref.local import Local
from django.contrib.admin.models import LogEntry
from django.db.models.signals import post_save
from django.utils import timezone
from simple_history.signals import post_create_historical_record

from pipeline.events import deal_changed, deal_changed_on_commit
from pipeline.models import Customer, Deal, User
from pipeline.team import HandoverPart, register_handover_part
from reminders.schedule import schedules_wake
from reminders.selectors import reminders_open_count
from reminders.services import reminders_hand_over
from reminders.tasks import queue_drain

# A person's fields that move their deals' reminders (a morning is the rep's
# morning; an escalation goes to the rep's manager).
PERSON_FIELDS = (",time_zone,", ",manager,")

_woken = Local()


def reminders_refresh_on_deal_changed(
    sender, *, deal_id: int, actor_id=None, commit=None, **kwargs
) -> None:
    """A deal or its money changed (``pipeline.events.deal_changed``, sent after commit):
    wake the drain, unless it is already queued; once per commit, however many
    deals it changed (an import of 600 deals is one commit): every deal of the
    commit is in the outbox before the first of them is announced.

    The change itself is in the outbox (written in the writer's transaction),
    so nothing is lost if this fails: the next scan drains it.
    """
    if commit is not None and getattr(_woken, "commit", None) is commit:
        return
    _woken.commit = commit
    queue_drain()


def reminders_follow_admin_edit(sender, instance: LogEntry, created=False, **kwargs) -> None:
    """An add, change or delete in the Django admin (its log entry): the deal it
    touched goes into the outbox, in the admin's own transaction; a customer's
    or a person's deals are made due now. Anything else has no deal."""
    if not created or instance.content_type_id is None:
        return
    model = instance.content_type.model_class()
    if model is Deal and instance.is_deletion():
        return  # its reminders go with it
    if model is Customer:
        schedules_wake(now=timezone.now(), deal_ids=_deals_of_customer(instance.object_id))
        return
    if model is User:
        schedules_wake(now=timezone.now(), rep_id=instance.object_id)
        return
    deal_id = _deal_of(model, instance.object_id)
    if deal_id is not None:
        deal_changed_on_commit(deal_id=deal_id, actor_id=instance.user_id)


def _deals_of_customer(customer_id: str):
    return Deal.objects.filter(customer_id=customer_id).values_list("pk", flat=True)


def _deal_of(model, object_id: str) -> int | None:
    """The deal a row of ``model`` belongs to: the deal itself, or its ``deal`` (or its
    invoice's deal); None for a row of no deal, or gone."""
    if model is Deal:
        return int(object_id) if Deal.objects.filter(pk=object_id).exists() else None
    if model is None:
        return None
    names = {f.name for f in model._meta.get_fields()}
    path = "deal_id" if "deal" in names else "invoice__deal_id" if "invoice" in names else None
    if path is None:
        return None
    return model._default_manager.filter(pk=object_id).values_list(path, flat=True).first()


def reminders_follow_person(sender, instance, history_instance, **kwargs) -> None:
    """A person's time zone or manager changed (their change history): their deals
    are decided again at the next scan, their mornings and escalations anew."""
    fields = getattr(history_instance, "history_fields", "") or ""
    if isinstance(instance, User) and any(name in fields for name in PERSON_FIELDS):
        schedules_wake(now=timezone.now(), rep_id=instance.pk)


def connect() -> None:
    post_save.connect(
        reminders_follow_admin_edit, sender=LogEntry, dispatch_uid="reminders_follow_admin_edit"
    )
    post_create_historical_record.connect(
        reminders_follow_person,
        sender=User.history.model,
        dispatch_uid="reminders_follow_person",
    )
    deal_changed.connect(
        reminders_refresh_on_deal_changed, dispatch_uid="reminders_refresh_on_deal_changed"
    )
    register_handover_part(
        HandoverPart(noun="reminder", count=reminders_open_count, hand_over=reminders_hand_over)
    )
