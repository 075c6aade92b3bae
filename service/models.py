"""Every table, imported in one place so Alembic and `create_all` see the whole schema."""

import service.agenda.wanted  # noqa: F401  (its flush hook marks pairs a lower layer relinks)
import service.prep.send_times  # noqa: F401  (its flush hook follows people's zone changes)
from service.accounts.models import Account, AccountStatus, DirectoryGrant
from service.agenda.models import (
    ActionItem,
    AgendaRecord,
    PairTopic,
    PlanningWatermark,
    PlanWanted,
)
from service.calendars.models import (
    Calendar,
    GraphSeriesUid,
    ProviderCallLog,
    QuarantinedItem,
)
from service.db import Base
from service.email.models import OutboxMessage, OutboxStatus
from service.metrics.models import MetricSnapshot
from service.pairs.models import (
    AdHocMeeting,
    Occurrence,
    OccurrenceCopy,
    OccurrenceStatus,
    Override,
    Pair,
    Series,
    SeriesSource,
    SeriesStatus,
)
from service.people.models import Person

__all__ = [
    "Account", "AccountStatus", "ActionItem", "AdHocMeeting", "AgendaRecord", "Base",
    "Calendar", "DirectoryGrant", "GraphSeriesUid", "MetricSnapshot", "Occurrence",
    "OccurrenceCopy",
    "OccurrenceStatus",
    "OutboxMessage", "OutboxStatus", "Override", "Pair", "PairTopic", "Person", "PlanningWatermark",
    "PlanWanted", "ProviderCallLog",
    "QuarantinedItem", "Series", "SeriesSource", "SeriesStatus",
]
