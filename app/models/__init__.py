"""SQLAlchemy models, one module per domain. Importing this package registers them all."""

from app.models.chat import (  # noqa: F401
    AgentGroup,
    AgentProfile,
    AgentStatus,
    ChatBlock,
    ChatMessage,
    ChatSite,
    Conversation,
    ConversationStatus,
    PageView,
    SenderType,
    Visitor,
)
from app.models.chat_faq import FaqEntry, FaqTerm, FaqUnanswered  # noqa: F401
from app.models.chat_topics import ChatTopic, QuickLink  # noqa: F401
from app.models.contracts import (  # noqa: F401
    BillingCycle,
    Contract,
    ContractChange,
    ContractStatus,
    FeeBill,
    Payment,
    ServiceType,
)
from app.models.crm import (  # noqa: F401
    BankAccount,
    Client,
    ClientContact,
    ClientStatus,
    ServiceRecord,
    Tag,
    TaxpayerType,
)
from app.models.documents import Document, DocumentType  # noqa: F401
from app.models.idempotency import IdempotentRequest  # noqa: F401
from app.models.leads import Lead, LeadStatus  # noqa: F401
from app.models.ledger import (  # noqa: F401
    Account,
    AccountCategory,
    Direction,
    LedgerBook,
    OpeningBalance,
    Period,
    PeriodStatus,
    Voucher,
    VoucherKind,
    VoucherLine,
    VoucherState,
    VoucherWord,
)
from app.models.security import AuditLog, MFARecoveryCode, UserCredential, UserMFA, UserSession  # noqa: F401
from app.models.tax import ClientTaxFiling, ClientTaxProfile, FilingPeriod, LocationClass, TaxKind, TaxRate  # noqa: F401
from app.models.tax_filing import FilingStatus, TaxDeadline, TaxFiling  # noqa: F401
from app.models.work_board import WorkBoardTick  # noqa: F401
