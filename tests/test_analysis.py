"""Shared analysis helpers: progress over runs and the one-thread context."""

from __future__ import annotations

import torch

from specbias.experiments import analysis
from specbias.experiments.analysis import one_thread, progress


def test_progress_yields_every_item_in_order_through_a_terminal_bar(monkeypatch):
    seen = {}

    def fake_tqdm(items, **kwargs):
        seen.update(kwargs)
        return iter(items)

    monkeypatch.setattr(analysis, "tqdm", fake_tqdm)
    assert list(progress(["a", "b", "c"], "E13 inspheres pe4")) == ["a", "b", "c"]
    # labelled, and hidden automatically when stderr is not a terminal (tqdm's disable=None)
    assert seen == {"desc": "E13 inspheres pe4", "leave": False, "disable": None}


def test_one_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
