"""The quality page's rollout section: where each adapter stands, the served adapters side by side (each rate with
its count and Wilson 95% interval), and the moves an engineer may make, with the same checks as the CLI
(`tuning/rollout.py`). The figures are counts and rates over adapter ids: no question or document text."""

from __future__ import annotations

from typing import Any

import streamlit as st

from assistant.access import Principal
from assistant.adapters import adapters_dir
from assistant.components import Components
from assistant.errors import AssistantError
from assistant.rollout import read_rollout
from evals.rollout import RATES, AdapterFigures, served_figures, shadow_figures
from tuning import registry, rollout
from ui import untrusted


def comparison_rows(figures: list[AdapterFigures]) -> list[dict[str, Any]]:
    return [
        {
            "adapter": f.adapter,
            "questions": f.questions,
            **{name.replace("_", " "): f.rates[name].shown() for name in RATES},
            "latency p50": f"{f.latency_p50:.1f} s" if f.latency_p50 is not None else "-",
        }
        for f in figures
    ]


def show_rollout(components: Components, principal: Principal) -> None:
    settings = components.settings
    staged = read_rollout(adapters_dir(settings))
    records = registry.list_adapters(settings)
    if staged is not None:
        st.caption(untrusted.label(f"In {staged.stage}: {staged.adapter} at {staged.share:.0%} since {staged.since}"))
    if records:
        st.dataframe(
            [
                {
                    "id": r.id,
                    "stage": rollout.stage_of(settings, r),
                    "last move": rollout.last_move(r),
                }
                for r in records
            ],
            hide_index=True,
        )
    if staged is not None and staged.stage == "shadow":
        shadow = shadow_figures(settings.data_dir, staged.adapter, staged.since)
        st.subheader("Shadow: the same questions, answered twice")
        st.dataframe(comparison_rows([shadow.served, shadow.candidate]), hide_index=True)
        agreement = ", ".join(f"{k.replace('_', ' ')} {v.shown()}" for k, v in shadow.agreement.items())
        st.caption(untrusted.label(f"Agreement: {agreement}. Shadowed questions {shadow.skipped_line()}."))
    figures = served_figures(settings.data_dir, staged.since if staged is not None else None)
    if figures:
        st.subheader("Served adapters side by side" + (" (since the rollout began)" if staged is not None else ""))
        st.dataframe(comparison_rows(figures), hide_index=True)
    if records:
        show_moves(components, principal, [r.id for r in records])


def show_moves(components: Components, principal: Principal, ids: list[str]) -> None:
    settings = components.settings
    who = f"ui:{principal.user_id}"
    with st.form("rollout-move"):
        adapter = st.selectbox("Adapter", ids)
        stage = st.radio("Move to", ["shadow", "canary", "promoted (with its rollout evidence)"], horizontal=True)
        share = st.slider("Share (of questions in shadow, of users in canary)", 0.05, 1.0, 0.2, 0.05)
        why = st.text_input("Why (kept in the adapter's record)")
        move, back = st.columns(2)
        moved = move.form_submit_button("Move", type="primary")
        rolled_back = back.form_submit_button("Roll back now")
    try:
        if moved and stage in ("shadow", "canary"):
            record = rollout.start(settings, adapter, stage, share, who, why, components.store)  # type: ignore[arg-type]
            st.success(untrusted.label(f"{record.id} is in {stage} at {share:.0%}."))
        elif moved:
            promotion = rollout.promote(settings, adapter, who, why or "promoted", components, evidence=True)
            st.success(
                untrusted.label(f"{promotion.record.id} is promoted: it serves everyone from the next question.")
            )
        elif rolled_back:
            st.success(untrusted.label(rollout.rollback(settings, who, why or "rolled back from the quality page")))
    except AssistantError as exc:  # the move is refused: say why, keep the page
        st.error(untrusted.label(str(exc)))
