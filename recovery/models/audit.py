"""The audit trail: who saw which patient's data, and who changed what, and when."""

from __future__ import annotations

import enum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, created_at


class AuditAction(enum.Enum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"  # a wrong password, a wrong code, or an unknown email
    LOGIN_THROTTLED = "login_throttled"  # refused unchecked: too many failures of late
    LOGIN_SECOND_FACTOR = "login_second_factor"  # the password was right; a code is asked
    TOTP_ENROLLED = "totp_enrolled"
    RECOVERY_CODE_USED = "recovery_code_used"
    SESSION_EXPIRED = "session_expired"  # idle or too old: signed out by the clock
    SIGN_OUT_EVERYWHERE = "sign_out_everywhere"
    DENIED = "denied"  # a signed-in user asked for something not theirs (403/404)
    CLI_CHANGE = "cli_change"  # the command line changed a user, practice, key or token
    LOGOUT = "logout"
    VIEW_PAGE = "view_page"  # the page link: the patient's number and words
    ACK_PAGE = "ack_page"
    VIEW_TASKS = "view_tasks"  # the queue: patients' numbers
    CLAIM_TASK = "claim_task"  # detail "; next task" when the Next task button chose it
    UNCLAIM_TASK = "unclaim_task"  # back to the queue, unclaimed
    REASSIGN_TASK = "reassign_task"  # to another queue or person; detail says which
    COMPLETE_TASK = "complete_task"
    UNDO_COMPLETE_TASK = "undo_complete_task"  # within the undo window, by who completed it
    VIEW_EPISODE = "view_episode"  # the timeline: the patient's number and words
    MARK_BOOKED = "mark_booked"
    UNDO_MARK_BOOKED = "undo_mark_booked"
    STAFF_REPLY = "staff_reply"  # a text to the patient from the conversation page
    VIEW_USERS = "view_users"
    INVITE_USER = "invite_user"  # detail: the new user's id and role
    CHANGE_ROLE = "change_role"
    DEACTIVATE_USER = "deactivate_user"
    REACTIVATE_USER = "reactivate_user"
    SET_PASSWORD = "set_password"  # noqa: S105 - an action name; through a one-time link
    EDIT_ROSTER = "edit_roster"  # the on-call order or the manager to page
    RUN_DRILL = "run_drill"  # a fire drill: the roster texted a TEST page; detail its code
    EDIT_SAVED_REPLIES = "edit_saved_replies"
    VIEW_REPORT = "view_report"  # figures only, no PHI; kept to show who reads the report
    VIEW_EPISODES = "view_episodes"  # the episode list: masked callers, times, outcomes
    EXPORT_EPISODES = "export_episodes"  # the CSV of a range
    AUDIT_CALLS = "audit_calls"  # a leak audit of an uploaded call log: its size and format


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_user_id_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Who: a signed-in user, or (for the API) the token that was used; neither for a
    # sign-in with an unknown email or a change made from the command line.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    api_token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"))
    # Stored as its value in a plain string column: an action added later needs no migration.
    action: Mapped[str] = mapped_column(String(32))
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episodes.id"), index=True)
    # What was seen or done, by reference (ids, codes, queue): never the PHI itself.
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[created_at]
    # The hash chain (recovery.services.audit): the row's place, the hash of the row before
    # it and its own hash over both and its content. An edited, inserted or deleted row
    # breaks it, and `recovery audit verify` names the first one.
    seq: Mapped[int | None] = mapped_column(unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))


class AuditChain(Base):
    """One row: the chain's last place and hash. Appending locks it first, so two writers
    never chain onto the same row (no fork); and a deleted tail shows against it."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
