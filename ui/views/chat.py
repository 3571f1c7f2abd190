"""Chat: answers stream in as they are written, cite [n] sources the user may read (each opens its chunk), or
refuse (with the closest passages the user may read, when some were found). Follow-ups carry the conversation
(each answer with the documents it cited: the pipeline drops those the user can no longer read), which is kept
across reloads (`ui.conversations`) until "New chat"; thumbs up/down are recorded. Answers are document text,
shown as text; a source's passage through the safe Markdown subset (`ui.answer_view`, `ui.untrusted`)."""

from __future__ import annotations

import uuid

import streamlit as st

from assistant.access import Principal
from assistant.answering import Answer, Answerer
from assistant.components import Components
from assistant.errors import QuestionTooLongError
from assistant.feedback import Feedback, record_feedback
from assistant.prompt import Turn
from assistant.retriever import check_question
from ui import conversations
from ui.answer_view import show_answer, show_closest
from ui.conversations import Exchange
from ui.guard import require
from ui.roles import Page
from ui.runtime import ModelWarmup, model_warmup
from ui.untrusted import label

CHAT_KEY = "chat"
CHAT_USER_KEY = "chat_user"  # the principal (user and groups) whose conversation CHAT_KEY holds
SESSION_KEY = "chat_session_id"
WAITING = "Searching the documents you may read, then writing the answer ..."


def stream_answer(answerer: Answerer, principal: Principal, question: str, history: list[Exchange]) -> Answer:
    """Show the answer as it is decoded; return the checked answer."""
    turns = [past_turn(e) for e in history if not e.answer.refused]
    session_id = st.session_state.setdefault(SESSION_KEY, uuid.uuid4().hex)
    shown = st.empty()
    shown.caption(WAITING)
    written = ""
    # Leaving the block closes the stream: a run stopped mid-answer (Stop, a new question, a closed tab) stops
    # decoding here.
    with answerer.stream(principal, question, turns, session_id=session_id) as stream:
        for piece in stream:  # a piece, or "" while waiting for the model: an update lets Streamlit stop this run
            written += piece
            if written:
                shown.text(written)  # as text: the model copies documents, never rendered as markdown
            else:
                shown.caption(WAITING)
        return stream.answer


def show_model_status(warmup: ModelWarmup) -> None:
    """While the model loads (a minute or more on a CPU at first start), say so: a question asked now waits."""
    if warmup.error is not None:
        st.error(f"The answer model could not be loaded: {label(warmup.error)}")
    elif not warmup.ready:
        st.info(
            f"Loading the answer model ({warmup.seconds():.0f} s so far; about a minute on a laptop CPU, longer the "
            "first time, when it is converted). You can ask now: the answer starts when it is loaded.",
            icon=":material/hourglass_top:",
        )


def past_turn(exchange: Exchange) -> Turn:
    """What a follow-up's prompt may carry of an exchange: the answer, and the documents it cited."""
    return Turn(exchange.question, exchange.answer.answer, tuple(c.doc_id for c in exchange.answer.citations))


def show_exchange(index: int, exchange: Exchange, components: Components, principal: Principal) -> None:
    with st.chat_message("user"):
        st.text(exchange.question)  # the user's own words, as text: an image link there is never fetched
    with st.chat_message("assistant"):
        answer = exchange.answer
        if answer.refused:
            st.info(answer.answer, icon=":material/block:")
            show_closest(answer)
        else:
            show_answer(answer)
        adapter = f" + adapter {answer.adapter.rsplit('/', 1)[-1]}" if answer.adapter else ""
        model = label(f"{answer.model}{adapter}") if answer.generated else "no model (refused before generation)"
        st.caption(f"{model} · {answer.seconds:.1f} s")  # ids from the data directory: escaped, never markdown
        show_feedback(index, exchange, components, principal)


def show_feedback(index: int, exchange: Exchange, components: Components, principal: Principal) -> None:
    if exchange.feedback is not None:
        st.caption("Feedback recorded, thank you.")
        return
    thumbs = st.feedback("thumbs", key=f"thumbs-{index}")
    if thumbs is None:
        return
    comment = st.text_input("What was right or wrong? (optional)", key=f"comment-{index}")
    if st.button("Send feedback", key=f"send-{index}"):
        answer = exchange.answer
        feedback = Feedback(
            user_id=principal.user_id,
            question=exchange.question,
            helpful=thumbs == 1,
            comment=comment or None,
            trace_id=answer.trace_id,
            model=answer.model,
            adapter=answer.adapter,
            cited=[c.doc_id for c in answer.citations],
        )
        record_feedback(components.settings.data_dir, components.tracer, feedback)
        exchange.feedback = feedback.helpful
        keep(components, principal, st.session_state[CHAT_KEY])
        st.rerun()


def keep(components: Components, principal: Principal, history: list[Exchange]) -> None:
    """The conversation as it stands, for the next reload (`ui.conversations`)."""
    if not components.settings.ui.keep_conversations:
        return
    try:
        conversations.save(components.settings.conversations_dir, principal, history)
    except OSError as exc:  # a full disk: the answer stands, only the next reload will not show it
        st.warning(f"This conversation could not be kept for your next visit ({exc.strerror or exc}).")


def kept(components: Components, principal: Principal) -> list[Exchange]:
    if not components.settings.ui.keep_conversations:
        return []
    return conversations.load(components.settings.conversations_dir, principal, components.retriever())


components, principal = require(Page.CHAT)
st.title("Ask the company's documents")
show_model_status(model_warmup())
if st.session_state.get(CHAT_USER_KEY) != principal:  # another user, or other groups: never show that chat
    st.session_state[CHAT_KEY] = kept(components, principal)  # a reload: this user's own, what they may read now
    st.session_state[CHAT_USER_KEY] = principal
    st.session_state.pop(SESSION_KEY, None)
history: list[Exchange] = st.session_state[CHAT_KEY]
if history and st.button("New chat", icon=":material/add_comment:"):
    st.session_state[CHAT_KEY] = []
    st.session_state.pop(SESSION_KEY, None)
    if components.settings.ui.keep_conversations:
        conversations.clear(components.settings.conversations_dir, principal)
    st.rerun()
for number, past in enumerate(history):
    show_exchange(number, past, components, principal)
if question := st.chat_input("Ask a question, for example: How do I reset my password?"):
    try:
        check_question(question, components.settings.retrieval.max_question_chars)
    except QuestionTooLongError as exc:  # refused before it is searched, logged, traced or shown whole
        with st.chat_message("user"):
            st.text(question[:200] + " ...")
        st.error(f"Not asked: {exc}.")
        st.stop()
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        answerer = components.answerer(principal=principal, shadow=True)  # a canary user gets the candidate
        answer = stream_answer(answerer, principal, question, history)
    history.append(Exchange(question, answer))
    keep(components, principal, history)
    st.rerun()
