"""The conversation page: staff reply to the patient, saved replies, opt-outs, the patient's
answer joining the conversation, a clinician's ACK shown as theirs, and a "reply not
understood" task that must not count as resolved when nobody reached the patient."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import Settings
from recovery.crypto import PhiCipher
from recovery.db import session_scope, utcnow
from recovery.domain.messages import MAX_STAFF_REPLY, MessageKind
from recovery.domain.templates import SmsTemplates
from recovery.models import (
    AuditEvent,
    Episode,
    EpisodeOutcome,
    EpisodeStatus,
    Message,
    MessageStatus,
    Practice,
    SavedReply,
    Task,
    User,
)
from recovery.services import outreach
from recovery.services.replies import handle_reply, record_inbound
from tests.e2e import scenario
from tests.e2e.scenario import Scenario
from tests.unit.conftest import RecordingDispatcher
from tests.unit.test_outreach import FakeProvider
from tests.unit.test_staff_pages import sign_in, text_of

WORDS = "Hi, this is Dana at Valley Family. I can call you at 3 about your statement."


@pytest.fixture
def cipher(settings: Settings) -> PhiCipher:
    return PhiCipher.from_settings(settings)


@pytest.fixture
def world(sessions: sessionmaker[Session], templates: SmsTemplates, cipher: PhiCipher) -> Scenario:
    return scenario.build(sessions, templates, cipher, utcnow())


def patient_writes(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    cipher: PhiCipher,
    sender: str,
    words: str,
) -> Message:
    now = utcnow()
    with session_scope(sessions) as session:
        stored = record_inbound(
            session,
            cipher,
            provider_sid=f"SM{now.timestamp()}{sender}",
            from_raw=sender,
            to_raw=scenario.LINE,
            body=words,
            now=now,
        )
        assert stored.message_id is not None
        handle_reply(
            session,
            templates,
            cipher,
            stored.message_id,
            now=now,
            public_base_url=scenario.BASE_URL,
        )
        session.flush()
        message = session.get(Message, stored.message_id)
        assert message is not None
        session.expunge(message)
        return message


def staff_replies(sessions: sessionmaker[Session]) -> list[Message]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Message).where(Message.kind == MessageKind.STAFF_REPLY).order_by(Message.id)
            )
        )


def test_staff_reply_is_queued_encrypted_from_the_line_called_audited_and_shown(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    dispatcher: RecordingDispatcher,
    cipher: PhiCipher,
) -> None:
    token = sign_in(client, world.users.desk)
    page = text_of(client.get(f"/episodes/{world.billing_episode_id}"))
    assert "Reply to patient" in page and "not a secure channel" in page

    response = client.post(
        f"/episodes/{world.billing_episode_id}/reply", data={"csrf_token": token, "text": WORDS}
    )

    assert response.status_code == 302
    [sent] = staff_replies(sessions)
    assert sent.body == "" and cipher.decrypt(sent.body_ciphertext or "") == WORDS
    assert (sent.from_number, sent.to_number) == (scenario.LINE, scenario.BILLING_CALLER)
    assert sent.status is MessageStatus.PENDING and sent.episode_id == world.billing_episode_id
    assert dispatcher.sent[-1] == sent.id
    with sessions() as session:
        dana = session.scalars(select(User).where(User.email == world.users.desk)).one()
        [audit] = session.scalars(select(AuditEvent).where(AuditEvent.action == "staff_reply"))
    assert sent.sent_by == dana.id
    assert (audit.user_id, audit.episode_id) == (dana.id, world.billing_episode_id)
    assert WORDS not in audit.detail and f"message {sent.id}" in audit.detail
    thread = text_of(client.get(f"/episodes/{world.billing_episode_id}"))
    assert "Dana Front replied" in thread and WORDS in thread and "queued" in thread


def test_the_worker_sends_the_words_the_staff_member_wrote(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session], cipher: PhiCipher
) -> None:
    token = sign_in(client, world.users.desk)
    client.post(
        f"/episodes/{world.billing_episode_id}/reply", data={"csrf_token": token, "text": WORDS}
    )
    [queued] = staff_replies(sessions)
    provider = FakeProvider()

    result = outreach.deliver(
        sessions,
        provider,
        queued.id,
        status_callback=None,
        policy=outreach.SendPolicy(deadline=timedelta(hours=6)),
        cipher=cipher,
    )

    assert result.status == "accepted"
    [sms] = provider.sent
    assert (sms.body, sms.from_number, sms.to_number) == (
        WORDS,
        scenario.LINE,
        scenario.BILLING_CALLER,
    )
    thread = text_of(client.get(f"/episodes/{world.billing_episode_id}"))
    assert "sent" in thread.split("Dana Front replied")[1][:400]


def test_an_opted_out_patient_cannot_be_texted_and_the_box_says_why(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    cipher: PhiCipher,
) -> None:
    patient_writes(sessions, templates, cipher, scenario.BILLING_CALLER, "STOP")
    token = sign_in(client, world.users.desk)

    page = text_of(client.get(f"/episodes/{world.billing_episode_id}"))
    assert "Opted out" in page and "texted STOP" in page
    assert 'name="text"' not in page

    refused = client.post(
        f"/episodes/{world.billing_episode_id}/reply", data={"csrf_token": token, "text": WORDS}
    )
    assert refused.status_code == 400 and "texted STOP" in text_of(refused)
    assert staff_replies(sessions) == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [("   ", "Write a reply first"), ("x" * (MAX_STAFF_REPLY + 1), "Keep a reply under")],
)
def test_an_empty_or_overlong_reply_is_refused_and_kept_in_the_box(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session], text: str, reason: str
) -> None:
    token = sign_in(client, world.users.desk)

    refused = client.post(
        f"/episodes/{world.billing_episode_id}/reply", data={"csrf_token": token, "text": text}
    )

    assert refused.status_code == 400 and reason in text_of(refused)
    assert text.strip() in text_of(refused)
    assert staff_replies(sessions) == []


def test_another_practice_cannot_reply_in_a_conversation(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.other)

    response = client.post(
        f"/episodes/{world.billing_episode_id}/reply", data={"csrf_token": token, "text": WORDS}
    )

    assert response.status_code == 404
    assert staff_replies(sessions) == []


def test_a_saved_reply_is_one_click_away_rendered_for_the_practice(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session], cipher: PhiCipher
) -> None:
    with session_scope(sessions) as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        saved = SavedReply(
            practice_id=valley.id,
            title="Call us back",
            body="{{ practice_name }}: we tried to reach you. Please call {{ practice_phone }}.",
            active=True,
            created_at=utcnow(),
        )
        session.add(saved)
        session.flush()
        saved_id = saved.id
    token = sign_in(client, world.users.desk)
    expected = "Valley Family Clinic: we tried to reach you. Please call (512) 555-0100."
    page = text_of(client.get(f"/episodes/{world.billing_episode_id}"))
    assert "Call us back" in page and f'data-saved-text="{expected}"' in page

    client.post(
        f"/episodes/{world.billing_episode_id}/reply",
        data={"csrf_token": token, "text": "", "saved": str(saved_id)},
    )

    [sent] = staff_replies(sessions)
    assert cipher.decrypt(sent.body_ciphertext or "") == expected


def test_the_patients_answer_joins_the_conversation_and_marks_the_task_until_staff_answer(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    cipher: PhiCipher,
) -> None:
    token = sign_in(client, world.users.desk)
    client.post(
        f"/episodes/{world.billing_episode_id}/reply", data={"csrf_token": token, "text": WORDS}
    )

    answer = patient_writes(
        sessions, templates, cipher, scenario.BILLING_CALLER, "3 is fine, thanks"
    )

    assert answer.episode_id == world.billing_episode_id
    with sessions() as session:
        task = session.get(Task, world.billing_task_id)
        assert task is not None and task.patient_replied_at is not None
    queue = text_of(client.get("/tasks"))
    assert "Patient replied" in queue
    assert "3 is fine, thanks" in text_of(client.get(f"/episodes/{world.billing_episode_id}"))

    client.post(
        f"/episodes/{world.billing_episode_id}/reply",
        data={"csrf_token": token, "text": "Talk at 3."},
    )
    with sessions() as session:
        task = session.get(Task, world.billing_task_id)
        assert task is not None and task.patient_replied_at is None


def test_a_clinicians_ack_is_their_acknowledgement_not_the_patients_words(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    cipher: PhiCipher,
) -> None:
    patient_writes(sessions, templates, cipher, "+15125550111", f"ACK {world.page_code}")
    sign_in(client, world.users.nurse)

    page = text_of(client.get(f"/p/{world.page_code}"))
    words = page.split("What the patient wrote")[1].split("Patient's phone")[0]
    assert scenario.URGENT_WORDS in words and "ACK" not in words

    thread = text_of(client.get(f"/episodes/{world.urgent_episode_id}"))
    assert "Dr. Rivera answered the page by text" in thread
    assert f"ACK {world.page_code}" in thread.split("answered the page by text")[1][:300]
    assert "Patient wrote" not in thread.split("answered the page by text")[1][:300]


def _unclear_episode(sessions: sessionmaker[Session], world: Scenario) -> Episode:
    with sessions() as session:
        task = session.get(Task, world.unclear_task_id)
        assert task is not None
        episode = session.get(Episode, task.episode_id)
        assert episode is not None
        return episode


def test_an_unclear_task_done_without_reaching_the_patient_does_not_resolve_the_episode(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)
    assert "I called the patient" in text_of(client.get("/tasks?queue=front_desk"))

    response = client.post(
        f"/tasks/{world.unclear_task_id}/complete",
        data={"csrf_token": token, "note": "spam?"},
        follow_redirects=True,
    )

    assert "not counted as resolved" in text_of(response)
    episode = _unclear_episode(sessions, world)
    assert episode.status is EpisodeStatus.OPEN and episode.outcome is None


def test_an_unclear_task_resolves_when_someone_called_the_patient(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)

    client.post(
        f"/tasks/{world.unclear_task_id}/complete", data={"csrf_token": token, "called": "1"}
    )

    assert _unclear_episode(sessions, world).outcome is EpisodeOutcome.RESOLVED


def test_an_unclear_task_resolves_once_staff_texted_the_patient(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)
    episode_id = _unclear_episode(sessions, world).id
    client.post(f"/episodes/{episode_id}/reply", data={"csrf_token": token, "text": WORDS})
    assert "I called the patient" not in text_of(client.get("/tasks?queue=front_desk"))

    client.post(f"/tasks/{world.unclear_task_id}/complete", data={"csrf_token": token})

    assert _unclear_episode(sessions, world).outcome is EpisodeOutcome.RESOLVED


def test_the_conversation_page_polls_and_the_patients_answer_arrives_without_a_reload(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    cipher: PhiCipher,
) -> None:
    # The front desk answered from the conversation and waited: the patient's answer was
    # in the simulator and on the queue ("Patient replied"), but the conversation showed it
    # only after a reload.
    sign_in(client, world.users.desk)
    page = client.get(f"/episodes/{world.billing_episode_id}").get_data(as_text=True)
    live = re.search(r'data-live-url="([^"]+)" data-live-version="(\w+)"', page)
    assert live is not None and live.group(1) == f"/episodes/{world.billing_episode_id}/live"
    url, version = live.groups()

    def views() -> int:
        with sessions() as session:
            return len(
                session.scalars(select(AuditEvent).where(AuditEvent.action == "view_episode")).all()
            )

    seen = views()
    quiet = client.get(url, headers={"X-Live-Version": version, "X-Requested-With": "live"})
    assert quiet.status_code == 204 and views() == seen  # nothing new: nothing read

    patient_writes(sessions, templates, cipher, scenario.BILLING_CALLER, "after 3 works for me")
    news = client.get(url, headers={"X-Live-Version": version, "X-Requested-With": "live"})

    assert news.status_code == 200 and views() == seen + 1  # what it shows is a view
    assert "after 3 works for me" in text_of(news)
    assert news.headers["X-Live-Version"] not in ("", version)
    again = client.get(
        url, headers={"X-Live-Version": news.headers["X-Live-Version"], "X-Requested-With": "live"}
    )
    assert again.status_code == 204


def test_another_practice_cannot_poll_a_conversation(client: FlaskClient, world: Scenario) -> None:
    sign_in(client, world.users.other)

    response = client.get(
        f"/episodes/{world.billing_episode_id}/live", headers={"X-Live-Version": "x"}
    )

    assert response.status_code == 404


def test_an_answer_the_menu_does_not_understand_goes_to_the_person_who_texted(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    cipher: PhiCipher,
) -> None:
    # The front desk asked "is now a good time to call about your bill?" and the patient's
    # "yes call me after lunch" got "sorry, we didn't catch that. Please reply with a
    # number: 1 BOOK ..." from the practice's line.
    token = sign_in(client, world.users.desk)
    client.post(
        f"/episodes/{world.billing_episode_id}/reply", data={"csrf_token": token, "text": WORDS}
    )

    answer = patient_writes(
        sessions, templates, cipher, scenario.BILLING_CALLER, "yes call me after lunch"
    )

    assert answer.intent == "unknown" and answer.episode_id == world.billing_episode_id
    with sessions() as session:
        after = session.scalars(
            select(Message).where(
                Message.episode_id == world.billing_episode_id, Message.id > answer.id
            )
        ).all()
        task = session.get(Task, world.billing_task_id)
    assert after == []  # no menu, no hand-off text: the person answers
    assert task is not None and task.patient_replied_at is not None
    assert "Patient replied" in text_of(client.get("/tasks"))


def test_with_nobody_talking_to_the_patient_an_unclear_reply_still_gets_the_menu(
    world: Scenario,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    cipher: PhiCipher,
) -> None:
    answer = patient_writes(
        sessions, templates, cipher, scenario.BILLING_CALLER, "yes call me after lunch"
    )

    with sessions() as session:
        kinds = session.scalars(
            select(Message.kind).where(
                Message.episode_id == world.billing_episode_id, Message.id > answer.id
            )
        ).all()
    assert kinds == [MessageKind.REPROMPT]


def test_yes_to_the_front_desks_question_is_an_answer_not_a_re_subscription(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    cipher: PhiCipher,
) -> None:
    # "Were you calling about your Tuesday visit? Reply YES or NO." got, for YES, "you are
    # subscribed again" from a patient who had never opted out.
    token = sign_in(client, world.users.desk)
    client.post(
        f"/episodes/{world.billing_episode_id}/reply",
        data={"csrf_token": token, "text": "Is this about your statement? Reply YES or NO."},
    )

    answer = patient_writes(sessions, templates, cipher, scenario.BILLING_CALLER, "YES")

    with sessions() as session:
        after = session.scalars(
            select(Message.kind).where(
                Message.episode_id == world.billing_episode_id, Message.id > answer.id
            )
        ).all()
        task = session.get(Task, world.billing_task_id)
    assert after == []
    assert task is not None and task.patient_replied_at is not None


def test_with_no_saved_replies_a_manager_is_told_where_to_add_them(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    # A new practice has none: the reply box showed no trace of them, and a manager had to
    # know to look in Admin.
    scenario.add_manager(sessions, world.users, "pat@valley.example")
    sign_in(client, "pat@valley.example")
    page = text_of(client.get(f"/episodes/{world.billing_episode_id}"))
    assert 'No saved replies yet: <a href="/admin/replies">' in page

    scenario.add_saved_reply(sessions)
    page = text_of(client.get(f"/episodes/{world.billing_episode_id}"))
    assert "No saved replies yet" not in page and "Saved replies:" in page


def test_the_front_desk_is_not_sent_to_administration_for_saved_replies(
    client: FlaskClient, world: Scenario
) -> None:
    sign_in(client, world.users.desk)

    assert "No saved replies yet" not in text_of(
        client.get(f"/episodes/{world.billing_episode_id}")
    )
