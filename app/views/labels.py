"""Translated labels for enum values and a select field that shows them."""

from __future__ import annotations

import enum

from flask_appbuilder.fields import EnumField
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from wtforms import ValidationError

from app.models.chat import (
    AgentStatus,
    ButtonPosition,
    ConversationStatus,
    InvitationStatus,
    LeaveMessageStatus,
    OfferOutcome,
    ParticipantRole,
    PrechatMode,
    RoutingMode,
    SenderType,
    SendKey,
)
from app.models.contracts import BillingCycle, ContractStatus, ServiceType
from app.models.crm import ClientStatus, TaxpayerType
from app.models.documents import DocumentType
from app.models.leads import LeadStatus
from app.models.ledger import AccountCategory, Direction, PeriodStatus, VoucherKind, VoucherState
from app.models.tax import FilingPeriod, LocationClass, TaxKind
from app.models.tax_filing import FilingStatus
from app.services.contracts import CONTRACT_STATUS_LABELS

# Every enum of the models whose values are words gets a label for each value here
# (tests/test_zh_raw_values.py checks), so that no screen shows a stored value.
ENUM_LABELS: dict[type[enum.Enum], dict] = {
    TaxpayerType: {TaxpayerType.small_scale: _l("Small-scale taxpayer"),
                   TaxpayerType.general: _l("General taxpayer")},
    ClientStatus: {ClientStatus.active: lazy_pgettext("client status", "Active"),
                   ClientStatus.suspended: _l("Suspended"),
                   ClientStatus.ended: _l("Ended")},
    ServiceType: {ServiceType.bookkeeping: _l("Bookkeeping"), ServiceType.tax_filing: _l("Tax filing"),
                  ServiceType.business_registration: _l("Business registration"),
                  ServiceType.other: _l("Other")},
    BillingCycle: {BillingCycle.monthly: _l("Monthly"), BillingCycle.quarterly: _l("Quarterly"),
                   BillingCycle.yearly: _l("Yearly")},
    ContractStatus: CONTRACT_STATUS_LABELS,
    DocumentType: {DocumentType.invoice: _l("Invoice"), DocumentType.contract: _l("Contract"),
                   DocumentType.bank_statement: _l("Bank statement"), DocumentType.tax_form: _l("Tax form"),
                   DocumentType.other: _l("Other")},
    TaxKind: {TaxKind.vat: _l("VAT"), TaxKind.urban_maintenance: _l("Urban maintenance and construction tax"),
              TaxKind.education: _l("Education surcharge"), TaxKind.local_education: _l("Local education surcharge"),
              TaxKind.corporate_income: _l("Corporate income tax"),
              TaxKind.individual_income: _l("Individual income tax withheld"), TaxKind.stamp: _l("Stamp duty")},
    LocationClass: {LocationClass.urban: _l("Urban district"), LocationClass.county_town: _l("County town or town"),
                    LocationClass.other: _l("Elsewhere")},
    FilingPeriod: {FilingPeriod.monthly: _l("Monthly"), FilingPeriod.quarterly: _l("Quarterly"),
                   FilingPeriod.yearly: _l("Yearly")},
    FilingStatus: {FilingStatus.pending: _l("To file"), FilingStatus.filed: _l("Filed"),
                   FilingStatus.paid: _l("Tax paid")},
    LeadStatus: {LeadStatus.new: lazy_pgettext("lead", "New"), LeadStatus.contacted: lazy_pgettext("lead", "Contacted"),
                 LeadStatus.converted: lazy_pgettext("lead", "Converted to client"),
                 LeadStatus.lost: lazy_pgettext("lead", "Lost")},
    # ledger
    AccountCategory: {AccountCategory.asset: _l("Asset"), AccountCategory.liability: _l("Liability"),
                      AccountCategory.equity: _l("Equity"), AccountCategory.cost: _l("Cost"),
                      AccountCategory.income: _l("Income"), AccountCategory.expense: _l("Expense")},
    Direction: {Direction.debit: _l("Debit"), Direction.credit: _l("Credit")},
    VoucherState: {VoucherState.draft: _l("Draft"), VoucherState.reviewed: _l("Reviewed"),
                   VoucherState.posted: _l("Posted")},
    VoucherKind: {VoucherKind.normal: lazy_pgettext("voucher kind", "Normal"), VoucherKind.reversal: _l("Reversal"),
                  VoucherKind.carry_forward: _l("Carry-forward")},
    PeriodStatus: {PeriodStatus.open: _l("Not closed"),
                   PeriodStatus.closed: lazy_pgettext("period", "Closed")},
    # live chat
    ButtonPosition: {ButtonPosition.right: lazy_pgettext("button position", "Bottom right"),
                     ButtonPosition.left: lazy_pgettext("button position", "Bottom left")},
    RoutingMode: {RoutingMode.least_busy: _l("Least busy agent first"), RoutingMode.round_robin: _l("Round robin")},
    PrechatMode: {PrechatMode.off: lazy_pgettext("pre-chat field", "Not asked"),
                  PrechatMode.optional: lazy_pgettext("pre-chat field", "Optional"),
                  PrechatMode.required: lazy_pgettext("pre-chat field", "Required")},
    SendKey: {SendKey.enter: _l("Enter"), SendKey.ctrl_enter: _l("Ctrl+Enter")},
    AgentStatus: {AgentStatus.online: _l("Online"), AgentStatus.away: _l("Away"), AgentStatus.offline: _l("Offline"),
                  AgentStatus.invisible: _l("Invisible")},
    ConversationStatus: {ConversationStatus.queued: _l("Waiting"), ConversationStatus.offered: _l("Offered"),
                         ConversationStatus.active: _l("In progress"),
                         ConversationStatus.closed: lazy_pgettext("conversation", "Closed")},
    SenderType: {SenderType.visitor: _l("Visitor"), SenderType.agent: _l("Agent"), SenderType.system: _l("System"),
                 SenderType.note: _l("Internal note"), SenderType.whisper: _l("Whisper"),
                 SenderType.bot: _l("Assistant (bot)")},
    LeaveMessageStatus: {LeaveMessageStatus.new: _l("New"), LeaveMessageStatus.assigned: _l("Assigned"),
                         LeaveMessageStatus.replied: _l("Replied"),
                         LeaveMessageStatus.closed: lazy_pgettext("left message", "Closed")},
    ParticipantRole: {ParticipantRole.invited: lazy_pgettext("chat participant", "Invited colleague"),
                      ParticipantRole.watcher: lazy_pgettext("chat participant", "Watching supervisor")},
    OfferOutcome: {OfferOutcome.pending: lazy_pgettext("chat offer", "Pending"),
                   OfferOutcome.accepted: lazy_pgettext("chat offer", "Accepted"),
                   OfferOutcome.timed_out: lazy_pgettext("chat offer", "Timed out"),
                   OfferOutcome.declined: lazy_pgettext("chat offer", "Declined"),
                   OfferOutcome.withdrawn: lazy_pgettext("chat offer", "Withdrawn")},
    InvitationStatus: {InvitationStatus.sent: lazy_pgettext("invitation", "Sent"),
                       InvitationStatus.accepted: lazy_pgettext("invitation", "Accepted"),
                       InvitationStatus.declined: lazy_pgettext("invitation", "Declined")},
}


def enum_label(value: enum.Enum | None) -> str:
    if value is None:
        return ""
    return str(ENUM_LABELS.get(type(value), {}).get(value, value.value))


def enum_formatter(enum_class: type[enum.Enum]):  # noqa: ANN201
    """A list/show formatter: FAB hands enum columns over as member, name or value."""

    def _format(value) -> str:  # noqa: ANN001
        if value is None or value == "":
            return ""
        if not isinstance(value, enum_class):
            text = str(value).split(".")[-1]
            value = enum_class.__members__.get(text) or enum_class(text)
        return enum_label(value)

    return _format


class LabelledEnumField(EnumField):
    """FAB's enum select, showing translated labels instead of raw values."""

    def __init__(self, enum_class: type[enum.Enum], label=None, validators=None, **kwargs):  # noqa: ANN001
        super().__init__(enum_class=enum_class, enums=list(enum_class.__members__), label=label,
                         validators=validators, widget=Select2Widget(), **kwargs)
        labels = ENUM_LABELS[enum_class]
        self.choices = [(name, labels[enum_class[name]]) for name in enum_class.__members__]

        def coerce(value):  # noqa: ANN001, ANN202
            if value is None or isinstance(value, enum_class):
                return value
            try:
                return enum_class[str(value)]
            except KeyError:
                raise ValueError(str(_l("Not a valid choice."))) from None

        self.coerce = coerce

    def pre_validate(self, form) -> None:  # noqa: ANN001
        if not isinstance(self.data, enum.Enum) or self.data.name not in dict(self.choices):
            raise ValidationError(str(_l("Not a valid choice.")))
