"""Every model, imported here so that `Base.metadata` is complete for Alembic and tests."""

from recovery.models.admin import PasswordLink, SavedReply
from recovery.models.audit import AuditAction, AuditChain, AuditEvent
from recovery.models.call import CallDisposition, CallEvent
from recovery.models.consent import OptOut, UntextableNumber
from recovery.models.drill import Drill, DrillAnswer
from recovery.models.episode import Episode, EpisodeOutcome, EpisodeStatus
from recovery.models.message import Direction, Message, MessageStatus
from recovery.models.page import Page, PageStatus
from recovery.models.practice import Practice, PracticeNumber
from recovery.models.task import Task, TaskQueue, TaskStatus
from recovery.models.token import ApiToken
from recovery.models.undo import UndoableAction, UndoKind
from recovery.models.user import Role, User

__all__ = [
    "ApiToken",
    "AuditAction",
    "AuditChain",
    "AuditEvent",
    "CallDisposition",
    "CallEvent",
    "Direction",
    "Drill",
    "DrillAnswer",
    "Episode",
    "EpisodeOutcome",
    "EpisodeStatus",
    "Message",
    "MessageStatus",
    "OptOut",
    "Page",
    "PageStatus",
    "PasswordLink",
    "Practice",
    "PracticeNumber",
    "Role",
    "SavedReply",
    "Task",
    "TaskQueue",
    "TaskStatus",
    "UndoKind",
    "UndoableAction",
    "UntextableNumber",
    "User",
]
