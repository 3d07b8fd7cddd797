"""Anomaly features, models (export, Numba scoring, versions, refusal of pickles/tampering) and alerts."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import T0, frame, txn
from polars.testing import assert_frame_equal

from followmoney import schema as S
from followmoney.detectors.anomaly import AnomalousPair, anomaly_candidates, side_evidence
from followmoney.errors import ModelError
from followmoney.features import (
    FEATURE_NAMES,
    MODEL_FEATURES,
    corridor_table,
    feature_matrix,
    pair_table,
    receiver_features,
)
from followmoney.forest import score_ecod, score_forest
from followmoney.models import TrainParams, list_models, load, save, score_table, train
from followmoney.normalise import RECEIVER_KEY, SENDER_KEY, party_keys

N_BURST = 4


def _world(seed: int = 11, n: int = 40_000) -> pl.DataFrame:
    """A seeded background of ordinary remittances plus N_BURST planted bursts of unusual corridor activity."""
    rng = np.random.default_rng(seed)
    senders, receivers = n // 10, n // 8
    s = rng.integers(0, senders, n)
    r = np.where(rng.random(n) < 0.7, (s * 7 + rng.integers(0, 2, n)) % receivers, rng.integers(0, receivers, n))
    t0 = T0.timestamp()
    ts = (t0 + rng.random(n) * 300 * 86_400) * 1e6
    amount = np.round(np.exp(rng.normal(4.8, 0.8, n)), 2)
    home = np.array(["TH", "TH", "TH", "MY", "KH", "MM"])[s % 6]
    dest = np.where(rng.random(n) < 0.85, home, np.array(["TH", "MY", "KH", "MM"])[rng.integers(0, 4, n)])
    background = pl.DataFrame(
        {
            S.TXN_ID: [f"T{i:06d}" for i in range(n)],
            S.TS: pl.Series(ts.astype(np.int64)).cast(pl.Datetime("us", "UTC")),
            S.SENDER_ID: [f"S{v}" for v in s],
            S.RECEIVER_ID: [f"R{v}" for v in r],
            S.SENDER_COUNTRY: home,
            S.RECEIVER_COUNTRY: dest,
            S.AMOUNT: amount,
            S.CURRENCY: "USD",
            S.AMOUNT_USD: amount,
            S.AGENT_ID: [f"A{v % 40}" for v in s],
        }
    )
    rows = []
    for k in range(N_BURST):  # a burst of unusual corridor activity: 6 night-time sends to AE in 12 days
        start = T0 + dt.timedelta(days=20 + 40 * k, hours=14)
        for j in range(6):
            rows.append(
                txn(
                    f"B{k}-{j:02d}",
                    f"BURST{k}",
                    f"BR{k}-{j % 2}",
                    start + dt.timedelta(days=2 * j, hours=j % 3),
                    3_600.0 + 137.3 * j,  # above the 3,000 line, never two within 3 days adding up to 10,000
                    agent=f"X{k}",
                    sender_country="TH",
                    receiver_country="AE",
                )
            )
    burst = frame(rows).select(background.columns)
    return pl.concat([background, burst]).with_columns(party_keys())


@pytest.fixture(scope="module")
def world() -> pl.DataFrame:
    return _world()


@pytest.fixture(scope="module")
def trained(world: pl.DataFrame) -> tuple[dict[str, np.ndarray], dict]:
    return train(world, TrainParams(seed=3, n_trees=60, fit_rows=40_000))


@pytest.fixture
def saved(tmp_path: Path, trained: tuple[dict[str, np.ndarray], dict]) -> Path:
    path, written = save(tmp_path, "iforest", *trained)
    assert written
    return path


# ---------------------------------------------------------------- features


def test_features_say_what_a_party_did() -> None:
    rows = [
        txn("i1", "BOSS", "MULE", T0, 5_000.0),  # MULE receives, then sends on within 48 h
        *[txn(f"o{j}", "MULE", f"X{j}", T0 + dt.timedelta(hours=2 + j), 2_900.0, agent=f"A{j % 3}") for j in range(5)],
        txn("o9", "MULE", "X0", T0 + dt.timedelta(days=20), 100.0, receiver_country="AE"),
    ]
    clean = frame(rows).with_columns(party_keys())
    table = pair_table(clean, corridor_table(clean))
    mule = table.filter(pl.col("subject_id") == "MULE").sort("counterparty_id")
    first = mule.row(0, named=True)
    assert first["payer_n"] == 6
    assert first["payer_receivers"] == 5
    assert first["payer_receivers_week"] == 5  # five distinct receivers in the first week
    assert first["payer_burst_share"] == pytest.approx(5 / 6)
    assert first["payer_agents"] == 4  # A0, A1, A2 and the default AG1
    assert first["payer_near_share"] == pytest.approx(5 / 6)  # 2,900 is within 20% below 3,000
    assert first["payer_velocity_share"] == pytest.approx(5 / 6)  # the last send is 20 days after the receipt
    assert first["payer_cross_share"] == pytest.approx(1 / 6)
    assert first["pair_n"] == 2 and first["counterparty_id"] == "X0"
    assert first["receiver_senders"] == 1
    assert set(FEATURE_NAMES) <= set(table.columns)
    boss = table.filter(pl.col("subject_id") == "BOSS").row(0, named=True)
    assert boss["payer_velocity_share"] == 0.0 and boss["payer_n"] == 1


def test_summed_features_do_not_depend_on_the_rows_around_them(world: pl.DataFrame) -> None:
    """A pair's and a payer's sums and variations come out to the last bit the same whether the pair table is
    built over every transfer or over a third of the payers' (as in a partition of a larger-than-memory
    scan): each is summed over its own transfers in time order, not in the order a parallel group-by meets
    them. (Before, 3,625 payer_usd and 307 payer_gap_cv values of a 30k-row world differed in the last bit
    between a partitioned and an in-memory scan, and a model reading them flipped an alert.)"""
    corridors = corridor_table(world)
    sums = ["pair_n", "pair_usd", "pair_amount_cv", "pair_gap_cv", "pair_corridor_rarity", "payer_n", "payer_usd"]
    cols = [SENDER_KEY, RECEIVER_KEY, *sums, "payer_gap_cv"]
    mine = (pl.col(SENDER_KEY) % 3) == 0
    whole = pair_table(world, corridors).filter(mine).select(cols)
    third = pair_table(world.filter(mine), corridors).select(cols)
    assert third.height > 5_000 and third["pair_n"].max() > 2  # type: ignore[operator]
    assert_frame_equal(third, whole, check_exact=True)
    # Reversing the other rows' order (the payers' own transfers keep theirs) changes nothing either.
    others = world.filter(~mine).reverse()
    shuffled = pl.concat([others, world.filter(mine)]).sort(pl.col(SENDER_KEY) % 5, maintain_order=True)
    assert_frame_equal(pair_table(shuffled, corridors).filter(mine).select(cols), whole, check_exact=True)


def test_a_partition_pair_table_reads_only_its_payers_and_gives_their_rows(world: pl.DataFrame) -> None:
    """In a partition (owned payers and every receiver's features given), the pair table keeps only the owned
    payers' sends before computing anything, and its rows are those of the whole table for those payers, for
    the shipped model's features and for every feature but the velocity. With the velocity asked for, the
    payers' receipts (other payers' sends) are still read: dropping them first would change it."""
    from followmoney.features import receiver_features

    corridors = corridor_table(world)
    mine = (pl.col(SENDER_KEY) % 3) == 1
    every_but_velocity = [f for f in FEATURE_NAMES if f != "payer_velocity_share"]
    for features in (load("iforest").feature_names, every_but_velocity):
        whole = pair_table(world, corridors, features=features).filter(mine)
        receivers = receiver_features(world.lazy(), features).collect()
        part = pair_table(world, corridors, receivers, mine, features=features)
        assert part.height == whole.height > 5_000
        assert_frame_equal(part, whole, check_exact=True)
    # This world's payers receive nothing; a mule does: BOSS (another partition's payer) pays it, it sends on.
    rows = [
        txn("i1", "BOSS", "MULE", T0, 5_000.0),
        *[txn(f"o{j}", "MULE", f"X{j}", T0 + dt.timedelta(hours=2 + j), 2_900.0) for j in range(5)],
    ]
    mule = frame(rows).with_columns(party_keys())
    owned = pl.col(SENDER_KEY) == mule.filter(pl.col(S.SENDER_ID) == "MULE")[SENDER_KEY][0]
    whole = pair_table(mule, corridor_table(mule)).filter(owned)
    receivers = receiver_features(mule.lazy()).collect()
    part = pair_table(mule, corridor_table(mule), receivers, owned)
    assert whole["payer_velocity_share"].to_list() == [1.0] * 5
    assert_frame_equal(part, whole, check_exact=True)


def test_features_do_not_depend_on_the_thread_count(world: pl.DataFrame, tmp_path: Path) -> None:
    """The same pair table from a process with one Polars thread as from this one (the old parallel
    group-by summed 9 payers' amounts of this world differently on one thread than on two)."""
    import os
    import subprocess
    import sys

    if pl.thread_pool_size() < 2:
        pytest.skip("this machine runs Polars on one thread: nothing to compare")
    out = tmp_path / "one-thread.parquet"
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from test_models import _world; from followmoney.features import corridor_table, pair_table;"
        "w = _world(); pair_table(w, corridor_table(w)).write_parquet(sys.argv[2])"
    )
    env = {**os.environ, "POLARS_MAX_THREADS": "1"}
    subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent), str(out)], check=True, env=env)
    assert_frame_equal(pl.read_parquet(out), pair_table(world, corridor_table(world)), check_exact=True)


# ---------------------------------------------------------------- kernels vs libraries


def _walk(x: np.ndarray, a: dict[str, np.ndarray]) -> np.ndarray:
    """Plain-Python twin of forest_path_sums (the kernel must match it)."""
    out = []
    x32 = x.astype(np.float32)
    for row in x32:
        total = 0.0
        for root in a["roots"]:
            node = int(root)
            while a["left"][node] >= 0:
                node = int(
                    a["left"][node] if float(row[a["feature"][node]]) <= a["threshold"][node] else a["right"][node]
                )
            total += float(a["leaf_value"][node])
        out.append(2.0 ** (-total / float(a["denominator"][0])))
    return np.array(out)


def test_forest_kernel_equals_sklearn_and_python_twin() -> None:
    from sklearn.ensemble import IsolationForest

    from followmoney.models import _export_iforest

    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(size=(3000, len(FEATURE_NAMES))), rng.normal(6, 1, size=(20, len(FEATURE_NAMES)))])
    arrays, info = _export_iforest(x, TrainParams(seed=5, n_trees=40, max_samples=128))
    reference = -IsolationForest(n_estimators=40, max_samples=128, random_state=5).fit(x).score_samples(x)
    np.testing.assert_allclose(score_forest(x, arrays), reference, rtol=0, atol=1e-12)
    np.testing.assert_allclose(score_forest(x[:50], arrays), _walk(x[:50], arrays), rtol=0, atol=1e-12)
    assert info["max_abs_diff_vs_sklearn"] == 0.0


def test_ecod_equals_pyod_on_its_reference() -> None:
    from pyod.models.ecod import ECOD

    from followmoney.models import _export_ecod

    rng = np.random.default_rng(1)
    x = np.column_stack([rng.exponential(size=800), rng.normal(size=800), -rng.exponential(size=800)])
    arrays, info = _export_ecod(x, TrainParams(kind="ecod", ecod_ref_rows=800))
    np.testing.assert_allclose(score_ecod(x, arrays), ECOD().fit(x).decision_scores_, rtol=1e-9, atol=1e-9)
    assert info["max_abs_diff_vs_pyod"] < 1e-9


# ---------------------------------------------------------------- quality floor (pyod-style)


@pytest.mark.parametrize("kind", ["iforest", "ecod"])
def test_planted_bursts_rank_on_top(world: pl.DataFrame, kind: str) -> None:
    from sklearn.metrics import roc_auc_score

    arrays, manifest = train(world, TrainParams(kind=kind, seed=3, n_trees=60, fit_rows=20_000))
    table = pair_table(world, corridor_table(world))
    x = feature_matrix(table, arrays["fill"], MODEL_FEATURES)
    assert [f["name"] for f in manifest["features"]] == [f.name for f in MODEL_FEATURES]
    scores = score_forest(x, arrays) if kind == "iforest" else score_ecod(x, arrays)
    planted = table["subject_id"].str.starts_with("BURST").to_numpy()
    assert roc_auc_score(planted, scores) >= 0.97  # quality floor
    assert manifest["training"]["pairs"] == table.height


def test_anomaly_alerts_name_the_planted_parties_and_explain_them(
    world: pl.DataFrame, saved: Path, tmp_path: Path
) -> None:
    model = load(str(saved))
    params = {name: p.default for name, p in AnomalousPair.params.items()}
    found = anomaly_candidates(world, model, score_table(model, pair_table(world, model.corridors())), params)
    subjects = found["subject_id"].to_list()
    assert {f"BURST{k}" for k in range(N_BURST)} <= set(subjects[: N_BURST + 2])
    burst = found.filter(pl.col("subject_id") == "BURST0").row(0, named=True)
    assert burst["n_txns"] == 6 and burst["n_pairs"] == 2 and burst["counterparty_id"] is None
    assert "of its sends go along rare corridors vs a typical 0%" in burst["explanation"]
    assert burst["anomaly_percentile"] >= params["min_percentile"] and 0 < burst["strength"] <= 1
    # the same model, asked about a party that behaves like this world's ordinary senders, stays silent
    quiet = frame(
        [txn(f"w{i}", "W1", f"F{i % 2}", T0 + dt.timedelta(days=31 * i + 3 * (i % 3)), 90.0 + 37 * i) for i in range(5)]
    )
    quiet = quiet.with_columns(party_keys())
    assert (
        anomaly_candidates(quiet, model, score_table(model, pair_table(quiet, model.corridors())), params).height == 0
    )


def test_side_evidence_takes_each_party_s_own_side_once_in_one_pass() -> None:
    """A sender-side party's evidence is its sends, a receiver-side party's its receipts (not its sends), and a
    transfer between two alerted parties is evidence for both; eager and lazy input agree."""
    day = dt.timedelta(days=1)
    rows = frame(
        [
            txn("t1", "A", "B", T0, 100.10),
            txn("t2", "A", "B", T0 + day, 100.20),
            txn("t3", "A", "C", T0 + 2 * day, 50.0),
            txn("t4", "A", "D", T0 + 3 * day, 10.0),  # A's send and D's receipt
            txn("t5", "E", "D", T0 + 4 * day, 20.0),
            txn("t6", "E", "D", T0 + 5 * day, 30.0),
            txn("t7", "D", "Z", T0 + 6 * day, 999.0),  # D's send: not D's evidence
            txn("t8", "F", "G", T0 + 7 * day, 5.0),  # nobody's
        ]
    )
    parties = pl.DataFrame({"_p": ["D", "A"], "side": ["receiver", "sender"]})
    found = side_evidence(rows, parties)
    assert_frame_equal(found, side_evidence(rows.lazy(), parties))
    a, d = found.rows(named=True)
    assert (a["_p"], a["n_txns"], a["total_usd"], a["txn_ids"], a["n_pairs"], a["_single"]) == (
        "A",
        4,
        260.30,
        ["t1", "t2", "t3", "t4"],
        3,
        None,
    )
    assert (a["window_start"], a["window_end"]) == (T0, T0 + 3 * day)
    assert (d["_p"], d["n_txns"], d["total_usd"], d["txn_ids"], d["n_pairs"], d["_single"]) == (
        "D",
        3,
        60.0,
        ["t4", "t5", "t6"],
        2,
        None,
    )
    only_e = side_evidence(rows, pl.DataFrame({"_p": ["E"], "side": ["sender"]})).row(0, named=True)
    assert (only_e["n_txns"], only_e["n_pairs"], only_e["_single"]) == (2, 1, "D")


# ---------------------------------------------------------------- files, versions, refusal


def test_save_writes_versions_and_never_overwrites(tmp_path: Path, trained, world: pl.DataFrame) -> None:
    p1, w1 = save(tmp_path, "iforest", *trained)
    p2, w2 = save(tmp_path, "iforest", *trained)  # same arrays: nothing new
    assert (p1.name, w1, p2, w2) == ("iforest-v1", True, p1, False)
    other = train(world, TrainParams(seed=4, n_trees=20, fit_rows=5_000))
    p3, w3 = save(tmp_path, "iforest", *other)
    assert (p3.name, w3) == ("iforest-v2", True)
    assert load("iforest", tmp_path).version == 2 and load("iforest-v1", tmp_path).version == 1
    assert [m["model"] for m in list_models(tmp_path)] == ["iforest-v1", "iforest-v2"]
    manifest = json.loads((p1 / "manifest.json").read_text())
    assert manifest["features"][0]["name"] == FEATURE_NAMES[0] and manifest["libraries"]["scikit-learn"]
    assert sorted(p.name for p in p1.iterdir()) == ["arrays.npz", "manifest.json"]


def _rehash(path: Path) -> None:
    """Make the manifest agree with a replaced arrays file (so only the content check can refuse it)."""
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["arrays"]["sha256"] = hashlib.sha256((path / "arrays.npz").read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_tampered_arrays_are_refused(saved: Path) -> None:
    data = bytearray((saved / "arrays.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (saved / "arrays.npz").write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"sha256 differs from manifest\.json"):
        load(str(saved))


def test_pickle_model_files_are_refused(saved: Path, trained) -> None:
    (saved / "arrays.npz").write_bytes(pickle.dumps(trained[0]))
    _rehash(saved)
    with pytest.raises(ModelError, match="never loads pickles"):
        load(str(saved))


def test_object_arrays_inside_npz_are_refused(saved: Path, trained) -> None:
    arrays = dict(trained[0])
    arrays["fill"] = np.array([{"x": 1}] * len(FEATURE_NAMES), dtype=object)
    np.savez(saved / "arrays.npz", **arrays)  # numpy pickles object arrays
    _rehash(saved)
    with pytest.raises(ModelError, match="need pickle"):
        load(str(saved))


def test_joblib_file_beside_a_model_is_refused(saved: Path) -> None:
    (saved / "model.joblib").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ModelError, match="never loaded"):
        load(str(saved))


def test_out_of_range_tree_links_are_refused(saved: Path, trained) -> None:
    arrays = dict(trained[0])
    left = arrays["left"].copy()
    internal = np.flatnonzero(left >= 0)
    left[internal[3]] = 0  # points back to the root: the kernel would loop forever
    arrays["left"] = left
    from followmoney.models import _npz_bytes

    (saved / "arrays.npz").write_bytes(_npz_bytes(arrays))
    _rehash(saved)
    with pytest.raises(ModelError, match="tree links point back"):
        load(str(saved))


def test_model_trained_on_other_features_is_refused(saved: Path) -> None:
    manifest = json.loads((saved / "manifest.json").read_text())
    manifest["features"][0]["name"] = "feature_of_a_future_version"
    (saved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="retrain"):
        load(str(saved))


# ---------------------------------------------------------------- CLI and pipeline


def test_cli_train_list_scan_and_refusal(tmp_path: Path, run_cli, world: pl.DataFrame) -> None:
    txns = tmp_path / "txns.parquet"
    world.drop("sender_key", "receiver_key").with_columns(
        pl.lit("n").alias(S.SENDER_NAME), pl.lit("m").alias(S.RECEIVER_NAME)
    ).write_parquet(txns)
    models = tmp_path / "models"
    result = run_cli("model", "train", txns, "--name", "tiny", "--trees", "30", "--models-dir", models)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and (models / "tiny-v1" / "manifest.json").exists()
    listing = run_cli("model", "list", "--models-dir", models)
    assert listing.exit_code == 0 and "tiny-v1" in listing.stdout
    out = tmp_path / "out"
    scan = run_cli("scan", txns, "--out", out, "--model", models / "tiny-v1", "--quiet")
    assert scan.exit_code == 0, scan.output
    summary = json.loads((out / "summary.json").read_text())
    used = summary["models"][0]
    assert used["name"] == "tiny" and used["version"] == 1
    assert used["manifest_sha256"] == hashlib.sha256((models / "tiny-v1" / "manifest.json").read_bytes()).hexdigest()
    alerts = pl.read_parquet(out / "alerts.parquet").filter(pl.col("typology") == "anomaly")
    assert set(alerts["subject_id"].head(N_BURST).to_list()) == {f"BURST{k}" for k in range(N_BURST)}
    assert alerts["reasons"].str.contains("tiny-v1").all()
    data = bytearray((models / "tiny-v1" / "arrays.npz").read_bytes())
    data[-40] ^= 0x01
    (models / "tiny-v1" / "arrays.npz").write_bytes(bytes(data))
    refused = run_cli("scan", txns, "--out", tmp_path / "out2", "--model", models / "tiny-v1", "--quiet")
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1 and "sha256 differs" in refused.stderr
    assert not (tmp_path / "out2").exists()


def test_prefilter_keeps_every_top_score_exact(world: pl.DataFrame, trained) -> None:
    arrays, _ = trained
    assert int(arrays["prefilter_trees"][0]) == 20
    table = pair_table(world, corridor_table(world))
    x = np.tile(feature_matrix(table, arrays["fill"], MODEL_FEATURES), (4, 1))  # above the prefilter's size floor
    exact = score_forest(x, arrays, exact=True)
    fast = score_forest(x, arrays)
    top = exact >= np.quantile(exact, 0.99)
    np.testing.assert_allclose(fast[top], exact[top], rtol=1e-12, atol=0)  # all trees walked (sums regrouped)
    assert np.mean(np.isclose(fast, exact, rtol=1e-12, atol=0)) < 0.5  # most rows stopped after 20 trees
    assert np.corrcoef(fast, exact)[0, 1] > 0.9  # and their estimates stay close


def test_float32_matrix_and_score_bound_change_no_score_or_hit(world: pl.DataFrame) -> None:
    model = load("iforest")
    table = pair_table(world, model.corridors())
    wide = feature_matrix(table, model.arrays["fill"], model.features)
    narrow = feature_matrix(table, model.arrays["fill"], model.features, np.float32)
    assert narrow.dtype == np.float32 and narrow.flags.c_contiguous
    np.testing.assert_array_equal(narrow, wide.astype(np.float32))  # one rounding, the same one
    scores = model.table_scores(table)
    np.testing.assert_array_equal(scores, model.raw_scores(wide))
    # Every score whose percentile reaches a floor is at or above score_below(floor), tightly.
    probe = np.concatenate([scores, model.arrays["score_grid"], np.nextafter(model.arrays["score_grid"], 0)])
    pct = model.percentiles(probe)
    for floor in (0.5, 0.9, 0.99, 0.995, 0.998, 0.9995):
        bound = model.score_below(floor)
        assert np.all(probe[pct >= floor] >= bound)
        assert np.any((probe >= bound) & (pct < floor)) or bound == -np.inf  # a bound, not the exact cut


def test_pair_table_computes_only_the_features_asked_for(world: pl.DataFrame) -> None:
    model = load("iforest")
    full = pair_table(world, model.corridors())
    asked = pair_table(world, model.corridors(), features=model.feature_names)
    skipped = set(FEATURE_NAMES) - set(model.feature_names)
    assert skipped and not skipped & set(asked.columns)  # e.g. the velocity join and weekly receivers never ran
    keep = ["subject_id", "counterparty_id", *model.feature_names]
    assert_frame_equal(asked.select(keep), full.select(keep))
    receivers = receiver_features(world.lazy(), model.feature_names).collect().sort(RECEIVER_KEY)
    assert receivers.columns == [RECEIVER_KEY, "receiver_n"]
    everything = receiver_features(world.lazy()).collect().sort(RECEIVER_KEY)
    assert_frame_equal(receivers, everything.select(receivers.columns))
    payer_only = pair_table(world, model.corridors(), features=["payer_burst_share"])
    assert_frame_equal(payer_only.select("payer_burst_share"), full.select("payer_burst_share"))
    assert "payer_receivers_week" not in payer_only.columns
