"""The private APIs of Optuna, timm and the standard library that mixaq relies on still behave as we
use them (pyproject also bounds optuna < 6 and timm < 2). A failure here names the contract a new
release broke, instead of a wrong result far away."""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor

import pytest
import torch


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_optuna_study_storage_and_trial_id(tmp_path, kind):
    """search/study/_liveness.reap_dead_trials: `study._storage` is the study's storage and
    `FrozenTrial._trial_id` its id there; failing a RUNNING trial returns True, failing it again
    raises `UpdateFinishedTrialError`."""
    import optuna
    from optuna.trial import TrialState

    from mixaq.search.study._storage import get_storage

    url = f"sqlite:///{tmp_path / 's.db'}" if kind == "sqlite" else f"journal:{tmp_path / 's.log'}"
    storage = get_storage(url)
    study = optuna.create_study(study_name="contract", storage=storage, directions=["maximize", "maximize"])
    study.ask()
    running = study.ask()
    frozen = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))[-1]
    assert frozen.number == running.number
    assert study._storage.get_trial(frozen._trial_id).number == frozen.number
    assert study._storage.set_trial_state_values(frozen._trial_id, state=TrialState.FAIL) is True
    assert study._storage.get_trial(frozen._trial_id).state == TrialState.FAIL
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        study._storage.set_trial_state_values(frozen._trial_id, state=TrialState.FAIL)


def test_timm_window_attention_relative_position_bias():
    """models/_two_branch: `attn._get_rel_pos_bias()` is the (1, heads, N, N) bias timm's window
    attention adds to q·k before the softmax (no mask)."""
    from mixaq.models import build_swin

    torch.manual_seed(0)
    block = build_swin("swin_nano", 32).layers[0].blocks[0].eval()
    attn = block.attn
    with torch.no_grad():
        torch.nn.init.normal_(attn.relative_position_bias_table, std=0.5)  # zeros would hide a wrong bias
        n = block.window_size[0] * block.window_size[1]
        x = torch.randn(3, n, block.dim)  # (B*nW, N, C)
        bias = attn._get_rel_pos_bias()
        assert bias.shape == (1, attn.num_heads, n, n)
        qkv = attn.qkv(x).reshape(3, n, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B*nW, nH, N, C/nH)
        weights = ((q * attn.scale) @ k.transpose(-2, -1) + bias).softmax(dim=-1)
        ours = attn.proj((weights @ v).transpose(1, 2).reshape(3, n, -1))
        torch.testing.assert_close(ours, attn(x))


def test_process_pool_keeps_its_processes():
    """search/study/_sweep._run_workers terminates the workers through `ProcessPoolExecutor._processes`."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        pid = pool.submit(os.getpid).result(timeout=120)
        procs = list(pool._processes.values())
        assert [p.pid for p in procs] == [pid] and all(hasattr(p, "terminate") for p in procs)


def test_optuna_compute_hypervolume():
    """search/space/_hypervolume.py: `optuna._hypervolume.compute_hypervolume(loss_vals, reference_point)`
    is the exact dominated volume of minimized points below the reference, and refuses points
    beyond it (we drop those first)."""
    import numpy as np
    from optuna._hypervolume import compute_hypervolume

    pts = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert compute_hypervolume(pts, np.array([4.0, 4.0])) == pytest.approx(3 + 2 + 1)
    cube = np.array([[1.0, 1.0, 1.0]])
    assert compute_hypervolume(cube, np.array([2.0, 3.0, 4.0])) == pytest.approx(1 * 2 * 3)
    with pytest.raises(ValueError):
        compute_hypervolume(np.array([[5.0, 1.0]]), np.array([4.0, 4.0]))
