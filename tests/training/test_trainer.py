from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import propensity
from propensity.bundle import load_model
from propensity.errors import BundleError, InsufficientDataError, ParameterError


def test_training_finds_real_signal_and_writes_a_complete_bundle(trained):
    model, out = trained
    m = model.manifest
    assert 0.7 < m.metrics["test"]["roc_auc"] < 0.99
    assert {c.name for c in m.candidates} - {"ensemble"} == {"logistic_regression", "lightgbm"}
    if m.winner == "ensemble":  # the default when a blend beats its best member out of fold
        assert m.ensemble is not None and {e.name for e in m.ensemble.members} == {
            "logistic_regression",
            "lightgbm",
        }
    assert all(c.oof["roc_auc"] > 0.6 and c.test is not None for c in m.candidates)
    assert m.input_schema.id_column == "customer_id"
    names = {f.name for f in m.input_schema.features}
    assert "last_review" not in names and "customer_id" not in names  # text and id are excluded
    assert {e.name for e in m.input_schema.excluded} >= {"last_review"}
    assert m.provenance.rows_train + m.provenance.rows_test == m.provenance.rows_used == 3000
    assert m.calibration.method in {"none", "sigmoid", "isotonic"}
    assert 0 < m.policy.threshold < 1 and [b.name for b in m.policy.bands] == ["high", "medium", "low"]
    for name in ("manifest.json", "model.joblib", "metrics.json", "quarantine.csv"):
        assert (out / name).exists(), name
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["winner"] == m.winner and summary["model_version"] == m.model_version
    assert len(m.model_version) == 12


def test_reload_predicts_identically(trained, customer_table):
    model, out = trained
    again = load_model(out)
    rows = customer_table.head(200)
    np.testing.assert_allclose(again.predict_proba(rows), model.predict_proba(rows))
    decided = again.decide(rows)
    assert list(decided.columns) == ["customer_id", "probability", "decision", "band"]
    assert (decided["decision"] == (decided["probability"] >= again.threshold)).all()


def test_the_test_set_is_not_used_for_selection_or_threshold(customer_table):
    """Flipping every test label changes test metrics but nothing chosen before the test."""
    train_part, test_part = customer_table.iloc[:2200], customer_table.iloc[2200:]
    flipped = test_part.assign(purchased=1 - test_part["purchased"])
    kw = {"candidates": ["logistic_regression", "lightgbm"], "seed": 5}
    a = propensity.train(train_part, "purchased", test=test_part, **kw).model
    b = propensity.train(train_part, "purchased", test=flipped, **kw).model
    assert a.manifest.winner == b.manifest.winner
    assert a.manifest.policy == b.manifest.policy
    assert a.manifest.metrics["oof"] == b.manifest.metrics["oof"]
    assert a.manifest.metrics["test"]["roc_auc"] == pytest.approx(1 - b.manifest.metrics["test"]["roc_auc"])


def test_the_shipped_model_is_refitted_on_the_test_rows_after_the_test(customer_table):
    """The test figures are those of the model fitted on the training rows; the bundle then learns
    from the test rows too (on small data by default), and says so."""
    kw = {"candidates": ["logistic_regression", "lightgbm"], "seed": 5}
    tested = propensity.train(customer_table, "purchased", refit_all=False, **kw)
    shipped = propensity.train(customer_table, "purchased", **kw)  # 3,000 rows: refit by default
    a, b = tested.model.manifest, shipped.model.manifest
    assert a.provenance.refit_rows == 0
    assert b.provenance.refit_rows == b.provenance.rows_train + b.provenance.rows_test
    assert a.metrics == b.metrics and a.policy == b.policy  # measured before the refit: identical
    X_test = shipped.run.X_test
    # without the refit the bundle gives exactly the tested probabilities; with it, new ones
    assert tested.model.predict_proba(X_test) == pytest.approx(tested.run.test_proba, abs=1e-12)
    moved = np.abs(shipped.model.predict_proba(X_test) - shipped.run.test_proba)
    assert moved.max() > 1e-6
    # and the refit learnt the test rows: its log loss on them is lower than the tested model's
    y = shipped.run.y_test
    loss = lambda p: -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))  # noqa: E731
    assert loss(shipped.model.predict_proba(X_test)) < loss(shipped.run.test_proba)
    # a test table the user gives stays unseen unless asked
    given = propensity.train(customer_table.iloc[:2400], "purchased", test=customer_table.iloc[2400:], **kw)
    assert given.model.manifest.provenance.refit_rows == 0


def test_same_seed_same_metrics(customer_table):
    kw = {"candidates": ["lightgbm", "random_forest"], "seed": 9}
    a = propensity.train(customer_table, "purchased", **kw).model
    b = propensity.train(customer_table, "purchased", **kw).model
    assert a.manifest.metrics == b.manifest.metrics
    assert [c.oof for c in a.manifest.candidates] == [c.oof for c in b.manifest.candidates]


def test_cart_adds_never_lower_the_score(trained, customer_table):
    """Behavioural check: the same customers with more cart adds score at least as high on average."""
    model, _ = trained
    base = customer_table.head(300).copy()
    more = base.copy()
    more["cart_adds_30d"] = base["cart_adds_30d"] + 3
    assert model.predict_proba(more).mean() > model.predict_proba(base).mean()


def test_tuning_adds_a_tuned_candidate(customer_table):
    result = propensity.train(
        customer_table, "purchased", candidates=["logistic_regression"], trials=4, seed=2
    )
    names = [c.name for c in result.model.manifest.candidates]
    assert names == ["logistic_regression", "logistic_regression_tuned"]
    assert result.run.tuning["trials"] == 4


def test_resampling_and_policies_are_honoured(customer_table):
    model = propensity.train(
        customer_table,
        "purchased",
        candidates=["logistic_regression"],
        resample="under",
        policy="top",
        fraction=0.1,
    ).model
    assert model.manifest.policy.kind == "top"
    assert model.manifest.policy.expected["contacted_share"] == pytest.approx(0.1, abs=0.01)


def test_bad_parameters_are_named():
    frame = pd.DataFrame({"x": range(100), "y": [0, 1] * 50})
    with pytest.raises(
        ParameterError, match="'folds' parameter of train must be an int in \\[2, 20\\]. Got 1"
    ):
        propensity.train(frame, "y", folds=1)
    with pytest.raises(ParameterError, match="Unknown candidate 'svm'"):
        propensity.train(frame, "y", candidates=["svm"])


def test_too_few_usable_rows_is_one_clear_error():
    frame = pd.DataFrame({"x": ["a", "b", "c", "d"] * 5 + ["junk"] * 40, "y": [0, 1] * 30})
    frame["x"] = ["1"] * 20 + ["oops"] * 40
    with pytest.raises(InsufficientDataError, match="Too few usable rows"):
        propensity.train(frame, "y", roles={"x": "numeric"})


def test_tampered_bundles_are_refused(trained, tmp_path):
    import shutil

    _, out = trained
    edited = tmp_path / "edited"
    shutil.copytree(out, edited)
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["policy"]["threshold"] = 0.01
    (edited / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="edited after the bundle was written"):
        load_model(edited)

    swapped = tmp_path / "swapped"
    shutil.copytree(out, swapped)
    with (swapped / "model.joblib").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match="model.joblib' was modified"):
        load_model(swapped)

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(BundleError, match="not a propensity model bundle"):
        load_model(foreign)

    future = tmp_path / "future"
    shutil.copytree(out, future)
    manifest = json.loads((future / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (future / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="schema version 99"):
        load_model(future)


def test_large_tables_screen_candidates_on_a_sample(customer_table):
    """Successive halving: all families on a sample, the leader on every row, the winner among full-data runs."""
    from propensity.training import TrainConfig, fit

    config = TrainConfig(
        target="purchased",
        candidates=["logistic_regression", "lightgbm"],
        screen_above=1000,
        screen_sample=1000,
        seed=3,
    )
    fitted = fit(customer_table, config)
    rows = {c.name: c.rows for c in fitted.model.manifest.candidates}
    assert sorted(rows.values()) == [1000, 2400]  # one screened on 1,000 rows; the finalist on all 2,400
    assert rows[fitted.model.manifest.winner] == 2400
    assert fitted.run.timings["full_data_cv"] > 0


def test_bundles_from_an_older_schema_still_verify(trained, tmp_path):
    """A later version may add optional manifest fields; a bundle written without them must still load."""
    import shutil

    from propensity.bundle import _bundle_hash

    _, out = trained
    old = tmp_path / "old"
    shutil.copytree(out, old)
    data = json.loads((old / "manifest.json").read_text())
    del data["provenance"]["trials"]  # a field this version added with a default
    for cand in data["candidates"]:
        del cand["rows"]
    digest = _bundle_hash(data, data["integrity"]["files"])  # what the older writer stored
    data["integrity"]["bundle_sha256"], data["model_version"] = digest, digest[:12]
    (old / "manifest.json").write_text(json.dumps(data))
    loaded = load_model(old)
    assert loaded.manifest.provenance.trials == 0 and loaded.version == digest[:12]


def test_copies_across_the_random_split_are_announced(customer_table):
    """A table whose rows repeat (ids aside) leaks copies into the test split: say so, and record how many."""
    from propensity.errors import PropensityWarning

    base = customer_table.head(600)
    copies = base.head(200).assign(customer_id=[f"copy{i}" for i in range(200)])
    with pytest.warns(PropensityWarning, match=r"test rows \(.*\) repeat a training row"):
        model = propensity.train(
            pd.concat([base, copies], ignore_index=True),
            target="purchased",
            candidates=["logistic_regression"],
            seed=0,
        ).model
    assert model.manifest.provenance.test_rows_repeating_training > 0
    clean = propensity.train(base, target="purchased", candidates=["logistic_regression"], seed=0).model
    assert clean.manifest.provenance.test_rows_repeating_training == 0


def test_candidates_ranking_metrics_are_those_of_their_raw_out_of_fold_scores(trained, training_run):
    # The bundle's calibrator keeps the model's order; the cross-fitted ones do not across folds.
    from sklearn.metrics import average_precision_score, roc_auc_score

    model, _ = trained
    reports = {c.name: c for c in model.manifest.candidates}
    for res in training_run.candidates:
        oof = reports[res.name].oof
        assert oof["roc_auc"] == pytest.approx(roc_auc_score(training_run.y_train, res.oof), abs=1e-6)
        assert oof["pr_auc"] == pytest.approx(
            average_precision_score(training_run.y_train, res.oof), abs=1e-6
        )
    assert model.manifest.metrics["oof"]["pr_auc"] == reports[model.manifest.winner].oof["pr_auc"]
