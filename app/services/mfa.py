"""Two-factor authentication with TOTP (RFC 6238) and single-use recovery codes.

Rules: a code is accepted within ±1 time step and never twice (the last used step is kept);
recovery codes are random, stored only as SHA-256 hashes, and each works once.
Users in ``MFA_REQUIRED_ROLES`` must enrol before they can use the application.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import pyotp
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.security import MFARecoveryCode, UserMFA
from app.services.inputs import ascii_digits

RECOVERY_CODE_COUNT = 10
STEP = 30


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().replace("-", "").lower().encode()).hexdigest()


def get_enrolment(session: Session, user_id: int) -> UserMFA | None:
    return session.get(UserMFA, user_id)


def is_enabled(session: Session, user_id: int) -> bool:
    enrolment = session.get(UserMFA, user_id)
    return bool(enrolment and enrolment.enabled)


def is_required(role_names: list[str], required_roles: list[str]) -> bool:
    """True when any of the user's roles is one of the roles that must use MFA."""
    return bool(set(role_names) & set(required_roles))


def pending_secret(session: Session, user_id: int) -> str:
    """The unconfirmed secret of *user_id*, created on first use.

    Showing the set-up page again keeps the secret the user may already have scanned.
    Raises ``ValueError`` when MFA is already enabled.
    """
    enrolment = session.get(UserMFA, user_id)
    if enrolment and enrolment.enabled:
        raise ValueError("MFA already enabled")
    if enrolment is not None:
        return enrolment.secret
    return start_enrolment(session, user_id)


def start_enrolment(session: Session, user_id: int) -> str:
    """Create (or replace an unconfirmed) secret for *user_id*; return the base32 secret.

    Raises ``ValueError`` when MFA is already enabled (disable or reset it first).
    """
    enrolment = session.get(UserMFA, user_id)
    if enrolment and enrolment.enabled:
        raise ValueError("MFA already enabled")
    secret = pyotp.random_base32()
    if enrolment is None:
        enrolment = UserMFA(user_id=user_id, secret=secret, enabled=False)
        session.add(enrolment)
    else:
        enrolment.secret = secret
    session.commit()
    return secret


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def _match_counter(secret: str, code: str, now: float | None = None) -> int | None:
    code = (code or "").strip().replace(" ", "")
    if not ascii_digits(code) or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = int((now or time.time()) // STEP)
    for counter in (current - 1, current, current + 1):
        if secrets.compare_digest(totp.generate_otp(counter), code):
            return counter
    return None


def confirm_enrolment(session: Session, user_id: int, code: str) -> list[str] | None:
    """Enable MFA if *code* matches the pending secret; return new recovery codes, else None."""
    enrolment = session.get(UserMFA, user_id)
    if enrolment is None or enrolment.enabled:
        return None
    counter = _match_counter(enrolment.secret, code)
    if counter is None:
        return None
    enrolment.enabled = True
    enrolment.confirmed_at = utcnow()
    enrolment.last_counter = counter
    codes = _new_recovery_codes(session, user_id)
    session.commit()
    return codes


def _new_recovery_codes(session: Session, user_id: int) -> list[str]:
    session.execute(delete(MFARecoveryCode).where(MFARecoveryCode.user_id == user_id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(5)
        code = f"{raw[:5]}-{raw[5:]}"
        codes.append(code)
        session.add(MFARecoveryCode(user_id=user_id, code_hash=_hash(code)))
    return codes


def regenerate_recovery_codes(session: Session, user_id: int) -> list[str]:
    codes = _new_recovery_codes(session, user_id)
    session.commit()
    return codes


def verify(session: Session, user_id: int, code: str, now: float | None = None) -> bool:
    """Check a TOTP code or an unused recovery code for an enrolled user (commits on success)."""
    enrolment = session.get(UserMFA, user_id)
    if enrolment is None or not enrolment.enabled:
        return False
    counter = _match_counter(enrolment.secret, code, now)
    if counter is not None:
        # One conditional UPDATE: of two requests racing with the same code only one wins.
        spent = session.execute(
            update(UserMFA)
            .where(UserMFA.user_id == user_id,
                   or_(UserMFA.last_counter.is_(None), UserMFA.last_counter < counter))
            .values(last_counter=counter)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        session.expire(enrolment)
        return spent.rowcount == 1  # 0: replay of a code already used
    used = session.execute(
        update(MFARecoveryCode)
        .where(MFARecoveryCode.user_id == user_id,
               MFARecoveryCode.code_hash == _hash(code or ""),
               MFARecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return used.rowcount == 1


def remaining_recovery_codes(session: Session, user_id: int) -> int:
    return len(list(session.scalars(select(MFARecoveryCode.id).where(
        MFARecoveryCode.user_id == user_id, MFARecoveryCode.used_at.is_(None)))))


def reset(session: Session, user_id: int) -> None:
    """Remove a user's enrolment and recovery codes (admin reset or user disable)."""
    session.execute(delete(MFARecoveryCode).where(MFARecoveryCode.user_id == user_id))
    session.execute(delete(UserMFA).where(UserMFA.user_id == user_id))
    session.commit()
