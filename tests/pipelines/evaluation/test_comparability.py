"""Runs that can be compared: one normalisation, one label set per dataset version, the same
scoring options, one quality weighting. The audit's reproductions are regression tests here."""

from __future__ import annotations

import json
import unicodedata
import uuid
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.chrf import CHRF
from sklearn import metrics as sk
from sqlalchemy.orm import Session

from models.db.tables import EvaluationRun
from pipelines.errors import Conflict, InvalidInput
from pipelines.evaluation import service, signatures
from pipelines.evaluation.artifacts import confusion_document
from pipelines.evaluation.classification import score_classification
from pipelines.evaluation.read_models import ConfusionMatrix
from pipelines.evaluation.scoring import (
    LEGACY_NORMALIZATION,
    ScoringOptions,
    compare,
    metric_lookup,
    score_examples,
    summarize,
)
from pipelines.evaluation.views import comparison, evaluation_detail
from pipelines.golden_datasets.errors import GoldenDatasetInvalid
from pipelines.golden_datasets.service import import_golden_dataset
from tests.factories import create_organization

FAST = ScoringOptions(n_resamples=60)
NFD = unicodedata.normalize("NFD", "Café déjà vu à Zürich")


class TestOneNormalisation:
    def test_the_same_nfd_text_as_prediction_and_reference_is_a_perfect_match(self) -> None:
        """Audit: an NFD string as both prediction and reference scored exact match 0, BLEU 0,
        chrF 26.5. Both are normalised alike: exact match 1, BLEU 100, chrF 100."""
        assert unicodedata.normalize("NFC", NFD) != NFD
        scores = score_examples("text_generation", predictions=[NFD + "\r\n"], expected=[NFD])
        rows = metric_lookup(
            summarize("text_generation", scores, slices=[""], options=FAST, quality=None)
        )
        assert rows[("", "exact_match")].value == 1.0
        assert rows[("", "bleu")].value == pytest.approx(100.0, abs=1e-9)
        assert rows[("", "chrf")].value == pytest.approx(100.0, abs=1e-9)

    def test_an_imported_reference_and_a_raw_prediction_match(
        self, session: Session, tmp_path: Path
    ) -> None:
        """The reference is stored NFC by import; the model's NFD answer is normalised the
        same way before scoring, through the service a flow calls."""
        org = create_organization(session)
        _import(session, org.id, tmp_path, "nfd", [("a", "q", NFD, "")], "text_generation")
        prepared = _prepare(session, org.id, tmp_path, "nfd", {"a": f"  {NFD}\r\n"}, "summarizer")
        scores = service.score_batch(
            task="text_generation",
            examples=prepared.examples,
            predictions=[f"  {NFD}\r\n"],
            options=FAST,
        )
        assert scores.loc[0, "exact_match"] == 1.0
        assert scores.loc[0, "bleu"] == pytest.approx(100.0, abs=1e-9)
        assert scores.loc[0, "chrf"] == pytest.approx(100.0, abs=1e-9)

    def test_runs_stored_before_normalisation_keep_scoring_as_they_did(self) -> None:
        """Options stored without `text_normalization` read as the legacy "none"."""
        options = ScoringOptions.from_config({"use_stemmer": True, "n_resamples": 10})
        assert options.text_normalization == LEGACY_NORMALIZATION
        assert ScoringOptions().text_normalization != LEGACY_NORMALIZATION


class TestPerSliceMacroAverages:
    def test_a_slice_with_every_example_right_has_macro_f1_one(self) -> None:
        """Audit: 12 correct examples of 2 of 3 classes reported macro-F1 0.667 and per-class
        rows of the absent class as 0 with CI [0, 0]. Now macro-F1 is 1.0 and the absent class
        is null without an interval."""
        labels = ["a", "b"] * 6 + ["c"] * 8
        predictions = [*labels[:12], "a", "a", "c", "c", "c", "c", "b", "c"]
        slices = ["easy"] * 12 + ["hard"] * 8
        scores = score_classification(predictions, labels)
        rows = metric_lookup(
            summarize(
                "classification",
                scores,
                slices=slices,
                options=FAST,
                quality=None,
                labels=["a", "b", "c"],
            )
        )
        assert rows[("easy", "f1_macro")].value == 1.0
        assert rows[("easy", "precision_macro")].value == 1.0
        assert rows[("easy", "recall_macro")].value == 1.0
        for metric in ("precision", "recall", "f1"):
            absent = rows[("easy", f"{metric}[c]")]
            assert (absent.value, absent.ci_low, absent.ci_high) == (None, None, None)
        # The hard slice has support only for c: its macro recall is c's recall.
        assert rows[("hard", "recall_macro")].value == pytest.approx(5 / 8)
        assert rows[("hard", "recall[a]")].value is None
        # A class predicted but absent: precision a real 0, recall undefined, F1 a real 0.
        assert rows[("hard", "precision[b]")].value == 0.0
        assert rows[("hard", "recall[b]")].value is None
        assert rows[("hard", "f1[b]")].value == 0.0

    def test_the_overall_macro_equals_sklearn_over_the_supported_labels(self) -> None:
        """Overall macro averages equal scikit-learn's over the labels with support."""
        labels = ["a", "b", "a", "b", "a"]
        predictions = ["a", "b", "b", "x", "a"]
        rows = metric_lookup(
            summarize(
                "classification",
                score_classification(predictions, labels),
                slices=[""] * 5,
                options=FAST,
                quality=None,
                labels=["a", "b", "unused"],
            )
        )
        p, r, f, _ = sk.precision_recall_fscore_support(
            labels, predictions, labels=["a", "b"], average="macro", zero_division=0
        )
        assert rows[("", "precision_macro")].value == pytest.approx(p, abs=1e-12)
        assert rows[("", "recall_macro")].value == pytest.approx(r, abs=1e-12)
        assert rows[("", "f1_macro")].value == pytest.approx(f, abs=1e-12)
        assert rows[("", "f1[unused]")].value is None
        assert ("", "f1[x]") not in rows  # a stray prediction never adds a class


class TestCompareUsesTheLabelSet:
    def test_a_stray_label_in_run_a_does_not_change_run_b(self) -> None:
        """Audit: run A predicting a stray label twice changed run B's macro-F1 inside the
        comparison (0.8748 -> 0.8019). B's value in the comparison is B's own value."""
        rng = np.random.default_rng(4)
        classes = ["billing", "refund", "other"]
        labels = rng.choice(classes, size=60, p=[0.5, 0.3, 0.2]).tolist()
        run_b = [y if rng.random() < 0.85 else rng.choice(classes) for y in labels]
        run_a = [y if rng.random() < 0.8 else rng.choice(classes) for y in labels]
        run_a[3] = run_a[9] = "complaint"  # a label outside the set
        scores_a = score_classification(run_a, labels)
        scores_b = score_classification(run_b, labels)
        alone = metric_lookup(
            summarize(
                "classification",
                scores_b,
                slices=[""] * 60,
                options=FAST,
                quality=None,
                labels=classes,
            )
        )
        result = compare(
            "classification",
            scores_a,
            scores_b,
            slices=[""] * 60,
            options=FAST,
            quality=None,
            labels=classes,
        )
        inside = next(r for r in result.overall if r.name == "f1_macro")
        assert inside.b == alone[("", "f1_macro")].value
        assert {r.label for r in result.overall if r.label} == set(classes)

    def test_mcnemar_is_reported_per_slice_too(self) -> None:
        """McNemar's exact test overall, then per slice with Holm across the slices."""
        labels = ["a", "b"] * 10
        better = list(labels)
        worse = ["b" if i % 3 == 0 else y for i, y in enumerate(labels)]
        slices = ["one"] * 10 + ["two"] * 10
        result = compare(
            "classification",
            score_classification(worse, labels),
            score_classification(better, labels),
            slices=slices,
            options=FAST,
            quality=None,
            labels=["a", "b"],
        )
        tests = {test.slice: test for test in result.mcnemar}
        assert set(tests) == {"", "one", "two"}
        assert tests[""].n == 20
        assert tests["one"].only_b_correct + tests["two"].only_b_correct == (
            tests[""].only_b_correct
        )
        assert tests[""].p_value_holm is None
        assert tests["one"].p_value_holm is not None
        assert tests["one"].p_value_holm >= tests["one"].p_value


class TestConfusionMatrix:
    def test_the_matrix_is_label_set_by_label_set_with_strays_counted_aside(self) -> None:
        """Rows expected, columns predicted over the label set; predictions outside it are
        counted per expected label and listed, never a column."""
        scores = score_classification(["a", "b", "zzz", "a", "zzz"], ["a", "a", "b", "b", "b"])
        document = ConfusionMatrix.model_validate(confusion_document(scores, ["a", "b", "c"]))
        assert document.labels == ["a", "b", "c"]
        assert document.matrix == [[1, 1, 0], [1, 0, 0], [0, 0, 0]]
        assert document.out_of_set == [0, 2, 0]
        assert document.out_of_set_values == {"zzz": 2}


class TestBleuAndChrfOptions:
    @pytest.mark.parametrize(
        "options",
        [
            ScoringOptions(bleu_tokenize="intl", bleu_lowercase=True),
            ScoringOptions(bleu_tokenize="char"),
            ScoringOptions(bleu_lowercase=True, chrf_char_order=4, chrf_word_order=2),
        ],
        ids=["intl-lowercase", "char", "chrf++"],
    )
    def test_corpus_scores_equal_sacrebleu_under_the_options(self, options: ScoringOptions) -> None:
        """Corpus BLEU and chrF under other tokenizers, lowercasing and orders equal
        sacrebleu's with the same options (to 1e-9)."""
        predictions = ["The Cat sat on the mat.", "Hello, World! 3.5-4 €", "zz", "naïve café"]
        references = ["the cat sat on a mat .", "hello world 3.5 - 4", "y z", "naive cafe"]
        scores = score_examples(
            "text_generation",
            predictions=predictions,
            expected=references,
            text_options=options.text_metrics(),
        )
        rows = metric_lookup(
            summarize("text_generation", scores, slices=[""] * 4, options=options, quality=None)
        )
        bleu = BLEU(tokenize=options.bleu_tokenize, lowercase=options.bleu_lowercase)
        chrf = CHRF(char_order=options.chrf_char_order, word_order=options.chrf_word_order)
        assert rows[("", "bleu")].value == pytest.approx(
            bleu.corpus_score(predictions, [references]).score, abs=1e-9
        )
        assert rows[("", "chrf")].value == pytest.approx(
            chrf.corpus_score(predictions, [references]).score, abs=1e-9
        )

    def test_unknown_options_are_refused_naming_the_field(self) -> None:
        """A tokenizer sacrebleu would need extra packages for, or an order out of range."""
        for changes, field in (
            ({"bleu_tokenize": "ja-mecab"}, "bleu_tokenize"),
            ({"chrf_char_order": 0}, "chrf_char_order"),
            ({"chrf_word_order": 9}, "chrf_word_order"),
        ):
            with pytest.raises(InvalidInput) as raised:
                ScoringOptions(**changes)
            assert raised.value.field == field

    def test_signatures_name_the_options_in_sacrebleus_words(self) -> None:
        """Every run records sacrebleu's signatures and rouge-score's version and options."""
        found = signatures.scoring_signatures(
            "text_generation",
            ScoringOptions(bleu_tokenize="intl", chrf_word_order=2).text_metrics(),
            use_stemmer=False,
        )
        assert "tok:intl" in found[signatures.BLEU]
        assert "eff:no" in found[signatures.BLEU]
        assert "eff:yes" in found[signatures.SENTENCE_BLEU]
        assert "nw:2" in found[signatures.CHRF]
        assert found[signatures.ROUGE].startswith("rouge-score 0.1.2|")
        assert "stemmer:no" in found[signatures.ROUGE]


class TestDeclaredLabelSets:
    ROWS: ClassVar = [("1", "refund please", "refund", ""), ("2", "invoice", "billing", "")]

    def test_the_label_set_defaults_to_the_expected_values(
        self, session: Session, tmp_path: Path
    ) -> None:
        """Without a declaration the label set is the expected values; declaring exactly them
        changes nothing (same version); declaring more is a new version."""
        org = create_organization(session)
        first = _import(session, org.id, tmp_path, "tickets", self.ROWS)
        assert first.version.label_set == ["billing", "refund"]
        same = _import(
            session, org.id, tmp_path, "tickets", self.ROWS, labels=["refund", "billing"]
        )
        assert (same.created, same.version.id) == (False, first.version.id)
        wider = _import(
            session, org.id, tmp_path, "tickets", self.ROWS, labels=["billing", "refund", "other"]
        )
        assert wider.created
        assert wider.version.label_set == ["billing", "other", "refund"]
        assert wider.version.content_hash != first.version.content_hash

    def test_expected_values_outside_the_declared_set_are_refused(
        self, session: Session, tmp_path: Path
    ) -> None:
        """Every expected value must be declared; the problem names the row and the label."""
        org = create_organization(session)
        with pytest.raises(GoldenDatasetInvalid, match="'billing' is not in the declared label"):
            _import(session, org.id, tmp_path, "t", self.ROWS, labels=["refund", "other"])
        for labels, task, message in (
            (["refund", " refund"], "classification", "more than once"),
            (["refund", ""], "classification", "empty label"),
            (["refund"], "text_generation", "classification datasets only"),
        ):
            with pytest.raises(InvalidInput, match=message) as raised:
                _import(session, org.id, tmp_path, "t2", self.ROWS, task=task, labels=labels)
            assert raised.value.field == "labels"

    def test_the_row_limit_is_a_parameter(self, session: Session, tmp_path: Path) -> None:
        """The per-row size limit is the caller's (the CLI passes its setting)."""
        org = create_organization(session)
        with pytest.raises(GoldenDatasetInvalid, match="the limit is 12"):
            _import(session, org.id, tmp_path, "small", self.ROWS, max_row_bytes=12)


class TestComparingStoredRuns:
    def test_runs_scored_with_and_without_stemming_are_refused(
        self, session: Session, tmp_path: Path
    ) -> None:
        """Audit: the same predictions with and without stemming compared as "different" at
        p = 0.001. Now the comparison is refused, saying why."""
        org = create_organization(session)
        rows = [(f"n{i}", f"text {i}", f"the valves were tested {i}", "") for i in range(8)]
        _import(session, org.id, tmp_path, "notes", rows, "text_generation")
        predictions = {f"n{i}": f"valve testing {i}" for i in range(8)}
        stemmed = _completed(session, org.id, tmp_path, "notes", predictions, "summarizer")
        plain = _completed(
            session,
            org.id,
            tmp_path,
            "notes",
            predictions,
            "summarizer",
            options=ScoringOptions(n_resamples=60, use_stemmer=False),
        )
        with pytest.raises(Conflict, match="use_stemmer is True in run A but False in run B"):
            service.compare_runs(session, organization_id=org.id, run_a=stemmed, run_b=plain)

    def test_classification_runs_compare_over_the_label_set_with_one_weighting(
        self, session: Session, tmp_path: Path
    ) -> None:
        """Stored runs: the label set, signatures and confusion matrix are in the detail; the
        comparison uses the version's label set and states its one set of quality weights."""
        org = create_organization(session)
        rows = [(f"t{i}", f"ticket {i}", "billing" if i % 3 else "refund", "") for i in range(9)]
        _import(session, org.id, tmp_path, "intents", rows, labels=["billing", "refund", "other"])
        truth = {i: y for i, _, y, _ in rows}
        stray = dict(truth, t1="complaint", t2="complaint")
        run_a = _completed(session, org.id, tmp_path, "intents", stray, "intent_classifier")
        run_b = _completed(
            session,
            org.id,
            tmp_path,
            "intents",
            truth,
            "intent_classifier",
            quality_weights="accuracy=1",
        )
        detail = evaluation_detail(session, organization_id=org.id, run_id=run_a)
        assert detail.labels == ["billing", "other", "refund"]
        assert detail.averaged_over == ["billing", "refund"]
        assert detail.scoring_signatures is not None
        assert "scikit_learn" in detail.scoring_signatures
        assert detail.confusion_matrix is not None
        assert detail.confusion_matrix.out_of_set == [2, 0, 0]
        assert detail.confusion_matrix.out_of_set_values == {"complaint": 2}

        view = comparison(
            service.compare_runs(session, organization_id=org.id, run_a=run_a, run_b=run_b)
        )
        assert view.labels == ["billing", "other", "refund"]
        assert view.quality_weights is not None
        assert view.quality_weights.source == "declared"
        assert view.quality_weights.agent_type == "intent_classifier"
        f1 = next(r for r in view.overall if r.name == "f1_macro")
        assert f1.b == 1.0
        # Run B's stored quality score used other weights: it is left out of B's metrics.
        assert "quality_score" not in {m.name for m in view.run_b.metrics}
        # Run A's used the declared weights: kept, and equal to A's side of the comparison.
        own = next(m for m in view.run_a.metrics if m.name == "quality_score")
        quality = next(r for r in view.overall if r.name == "quality_score")
        assert own.value == pytest.approx(quality.a, abs=1e-12)
        assert view.scoring_options["use_stemmer"] is True


def _import(
    session: Session,
    organization_id: uuid.UUID,
    storage: Path,
    name: str,
    rows: list[tuple[str, str, str, str]],
    task: str = "classification",
    **options: object,
):
    data = "\n".join(
        json.dumps({"id": i, "input": x, "expected": y, "slice": s}) for i, x, y, s in rows
    ).encode()
    return import_golden_dataset(
        session,
        organization_id=organization_id,
        actor="test",
        name=name,
        task=task,
        data=data,
        filename="rows.jsonl",
        storage_dir=storage,
        **options,
    )


def _prepare(
    session: Session,
    organization_id: uuid.UUID,
    storage: Path,
    dataset: str,
    predictions: dict[str, str],
    agent_type: str,
    options: ScoringOptions = FAST,
    quality_weights: str | None = None,
) -> service.PreparedEvaluation:
    return service.prepare_evaluation(
        session,
        organization_id=organization_id,
        actor="test",
        request=service.EvaluationRequest(
            dataset=dataset,
            agent_type=agent_type,
            predictions=service.PredictionsFile("p.jsonl", predictions, uuid.uuid4().hex),
            options=options,
            quality_weights=quality_weights,
        ),
        storage_dir=storage,
        flow_run_id=None,
    )


def _completed(
    session: Session,
    organization_id: uuid.UUID,
    storage: Path,
    dataset: str,
    predictions: dict[str, str],
    agent_type: str,
    options: ScoringOptions = FAST,
    quality_weights: str | None = None,
) -> uuid.UUID:
    """A completed run made through the services (MLflow and the flow are tested elsewhere)."""
    prepared = _prepare(
        session,
        organization_id,
        storage,
        dataset,
        predictions,
        agent_type,
        options,
        quality_weights,
    )
    run = session.get(EvaluationRun, prepared.run_id)
    assert run is not None
    ordered = [predictions[i] for i in prepared.examples["id"]]
    scores = service.score_batch(
        task=run.task, examples=prepared.examples, predictions=ordered, options=options
    )
    service.store_batch(
        session,
        run_id=prepared.run_id,
        batch_index=0,
        examples=prepared.examples,
        predictions=ordered,
        scores=scores,
    )
    metrics = service.aggregate_run(session, organization_id=organization_id, run_id=run.id)
    service.complete_run(
        session,
        organization_id=organization_id,
        run_id=run.id,
        actor="test",
        metrics=metrics,
        mlflow_run_id=None,
    )
    assert isinstance(scores, pd.DataFrame)
    return run.id
