"""Performance over budget (harness.report.budget): normalised regret and ranks vs trials,
full-fidelity-equivalent epochs, rank analyses at budgets, speed-up over random search.

Numbers are checked against a small example computed by hand in the comments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.report import aggregate, budget


def _rows(spec: dict[tuple[str, str, int], list[float | None]], *, budget_epochs: int = 4) -> pd.DataFrame:
    """Trial rows (accuracy, maximised) from {(problem, strategy, seed): [val per trial]}."""
    rows = []
    for (problem, strategy, seed), values in spec.items():
        for i, v in enumerate(values):
            rows.append(
                {
                    "experiment": "e",
                    "run_id": f"{strategy}_{problem}_s{seed}",
                    "dataset": problem,
                    "search_space": "s",
                    "strategy": strategy,
                    "seed": seed,
                    "task": "classification",
                    "trial_id": i,
                    "status": "ok" if v is not None else "failed",
                    "budget": budget_epochs,
                    "budget_spent": budget_epochs // 2 if i % 2 else budget_epochs,
                    "objective": v,
                    "test_objective": v,
                    "objective_name": "val_accuracy",
                    "objective_direction": "maximize",
                    "ask_seconds": 0.0,
                    "tell_seconds": 0.0,
                    "elapsed_seconds": float(i + 1),
                    "trainer": "backprop",
                    "clock": "wall",
                }
            )
    return aggregate.prepare(pd.DataFrame(rows))


# Problem p: every value seen lies in [0.5, 0.9] -> normalised regret (0.9 - b) / 0.4.
#   random s0: .5 .6 .9 -> best so far .5 .6 .9 -> 1, .75, 0
#   random s1: .5 .5 .5 -> 1, 1, 1
#   tpe    s0: .8 failed .9 -> .25, .25, 0
#   tpe    s1: .7 .8 .8 -> .5, .25, .25
SPEC = {
    ("p", "random", 0): [0.5, 0.6, 0.9],
    ("p", "random", 1): [0.5, 0.5, 0.5],
    ("p", "tpe", 0): [0.8, None, 0.9],
    ("p", "tpe", 1): [0.7, 0.8, 0.8],
}


def test_normalised_regret_of_the_best_so_far() -> None:
    frame = budget.best_so_far_normalised(_rows(SPEC))
    by_run = frame.groupby("run_id")["nr"].apply(list).to_dict()
    assert by_run["random_p_s0"] == pytest.approx([1.0, 0.75, 0.0])
    assert by_run["random_p_s1"] == pytest.approx([1.0, 1.0, 1.0])
    assert by_run["tpe_p_s0"] == pytest.approx([0.25, 0.25, 0.0])  # the failed trial keeps .8
    assert by_run["tpe_p_s1"] == pytest.approx([0.5, 0.25, 0.25])
    # Full-fidelity equivalents: epochs 4, 2, 4 of a full budget of 4 -> 1, 1.5, 2.5.
    assert frame[frame["run_id"] == "tpe_p_s1"]["fidelity_equivalents"].tolist() == [1.0, 1.5, 2.5]


def test_aggregate_over_seeds_then_problems() -> None:
    frame = budget.best_so_far_normalised(_rows(SPEC))
    long = budget.curves(frame, "trials", grid=np.array([1.0, 2.0, 3.0, 10.0]))
    agg = budget.aggregate(long).set_index(["strategy", "budget"])
    # One problem: mean and SE over seeds. random at 2 trials: (.75 + 1) / 2; tpe: (.25 + .25) / 2.
    assert agg.loc[("random", 2.0), "nr_mean"] == pytest.approx(0.875)
    assert agg.loc[("random", 2.0), "nr_se"] == pytest.approx(np.std([0.75, 1.0], ddof=1) / np.sqrt(2))
    assert agg.loc[("tpe", 2.0), "nr_mean"] == pytest.approx(0.25)
    # After the last trial the value stays: at 10 trials as at 3.
    assert agg.loc[("random", 10.0), "nr_mean"] == pytest.approx(0.5)
    assert agg.loc[("tpe", 10.0), "nr_mean"] == pytest.approx(0.125)
    assert agg.loc[("tpe", 3.0), "rank_mean"] == 1.0 and agg.loc[("random", 3.0), "rank_mean"] == 2.0
    assert (agg["se_over"] == "seeds").all()


def test_aggregate_over_two_problems_uses_problem_means() -> None:
    # Problem q: random finds the best (.9) at once, tpe stays at .5: the ranks swap there.
    spec = dict(SPEC)
    spec.update(
        {
            ("q", "random", 0): [0.9, 0.9, 0.9],
            ("q", "random", 1): [0.9, 0.9, 0.9],
            ("q", "tpe", 0): [0.5, 0.5, 0.5],
            ("q", "tpe", 1): [0.5, 0.5, 0.5],
        }
    )
    long = budget.curves(budget.best_so_far_normalised(_rows(spec)), "trials", grid=np.array([3.0]))
    agg = budget.aggregate(long).set_index("strategy")
    # random: p .5, q 0 -> mean .25, SE over problems std([.5, 0]) / sqrt(2); tpe: p .125, q 1.
    assert agg.loc["random", "nr_mean"] == pytest.approx(0.25)
    assert agg.loc["random", "nr_se"] == pytest.approx(np.std([0.5, 0.0], ddof=1) / np.sqrt(2))
    assert agg.loc["tpe", "nr_mean"] == pytest.approx(0.5625)
    assert agg.loc["random", "rank_mean"] == pytest.approx(1.5) and agg.loc["tpe", "rank_mean"] == 1.5
    assert (agg["problems"] == 2).all() and (agg["se_over"] == "problems").all()


def test_rank_analyses_at_budgets() -> None:
    spec = {
        (p, st, s): vals
        for p in "abcdef"
        for s in (0, 1)
        for st, vals in (("random", [0.5, 0.6, 0.7]), ("tpe", [0.6, 0.8, 0.9]), ("cmaes", [0.55, 0.7, 0.8]))
    }
    spec[("a", "tpe", 1)] = [0.6, 0.8, 0.9, 0.9, 0.9, 0.9]  # a longer run: budgets use the shortest
    (_, f1, b1, a1), (_, f2, b2, a2) = budget.analyses_at_budgets(
        budget.best_so_far_normalised(_rows(spec)), (0.34, 0.4, 1.0)
    )  # 0.34 and 0.4: both 1 trial
    assert (b1, b2) == (1.0, 3.0) and f1 == pytest.approx(1 / 3)
    # On every problem tpe > cmaes > random, at 1 trial and at 3: ranks 1, 2, 3 over 6 problems.
    for a in (a1, a2):
        assert a.average_rank.to_dict() == {"tpe": 1.0, "cmaes": 2.0, "random": 3.0}
        assert a.n_complete == 6 and a.significant and a.metric == "val"
        # 6 blocks: the verdict rests on the permutation test; 6 identical rankings of 3 happen
        # with probability (1/3!)**5 under the null.
        assert a.omnibus_name == "Friedman permutation test" and a.permutation_p < 0.001
        assert a.cd_diagram_meaningful is None


def test_speedup_over_random_search() -> None:
    # p: random's final bests .9 and .5 -> target = median .7. Runs reaching .7:
    #   random s0 at trial 3, s1 never (3 trials spent) -> aRT (3 + 3) / 1 = 6
    #   tpe s0 at trial 1, s1 at trial 1 (.7)          -> aRT 2 / 2 = 1 -> speed-up 6
    out = budget.speedup_over_random(budget.best_so_far_normalised(_rows(SPEC))).set_index("strategy")
    assert out.loc["random", "art_trials"] == 6.0 and out.loc["tpe", "art_trials"] == 1.0
    assert out.loc["tpe", "speedup"] == 6.0 and out.loc["random", "speedup"] == 1.0
    assert (out.loc["tpe", "reached"], out.loc["random", "reached"]) == (2, 1)
    summary = budget.speedup_summary(out.reset_index())
    assert summary.loc["tpe", "speedup_median"] == 6.0 and summary.loc["tpe", "problems_reached"] == 1
    none = {k: v for k, v in SPEC.items() if k[1] != "random"}
    assert budget.speedup_over_random(budget.best_so_far_normalised(_rows(none))).empty
