"""Imports every package's models so that the metadata is complete (migrations, verify)."""

from liutong.kit.idempotency import IdempotencyKey  # noqa: F401
from liutong.ledger.models import (  # noqa: F401
    Account,
    ExpiryReminder,
    JournalEntry,
    LotMovement,
    PointsLot,
    Posting,
)
from liutong.members.models import (  # noqa: F401
    ActivityDay,
    ConsentEvent,
    Member,
    MemberIdentity,
    MemberList,
    MemberListEntry,
    TierChange,
    TierPurchase,
    TierReview,
)
from liutong.organisation.models import (  # noqa: F401
    ApiKey,
    AuditRecord,
    LegalEntity,
    Merchant,
    StaffUser,
    Store,
    Tenant,
    Terminal,
    Venue,
)
from liutong.program.models import BehaviourAward, BenefitUse, CampaignBudgetUse, ProgramVersion  # noqa: F401
from liutong.jobs.models import Job, OutboxEvent  # noqa: F401
from liutong.checkout.models import Order, OrderLine, Refund  # noqa: F401
from liutong.visits.models import Stay, VenueEvent  # noqa: F401
from liutong.storedvalue.models import (  # noqa: F401
    StoredValueCashOut,
    StoredValueLot,
    StoredValueMovement,
    StoredValuePayment,
    StoredValueRecharge,
    StoredValueRefund,
)
