from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
import yaml

from pipelines.agents.summarizers import split_sentences

from .demo_data import DATASETS, REPO_ROOT, read_notes, read_tickets

CHANNELS = {"email", "chat", "phone_transcript", "web_form"}
TRADES = {"hvac", "plumbing", "electrical", "appliance"}


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    path = REPO_ROOT / "scripts" / "make_demo_datasets.py"
    spec = importlib.util.spec_from_file_location("make_demo_datasets", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the classes are created.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DATASETS / "manifest.yaml").read_text("utf-8"))
    return loaded


def words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def tag_values(tags: pd.Series, key: str) -> Counter[str]:
    return Counter(
        tag.split(":", 1)[1] for row in tags for tag in row.split(",") if tag.startswith(f"{key}:")
    )


class TestGenerator:
    def test_rerun_reproduces_the_committed_files_byte_for_byte(
        self, generator: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Running the generator into an empty folder rewrites exactly the committed files."""
        assert generator.main(["--out", str(tmp_path)]) == 0
        capsys.readouterr()
        written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
        assert [str(p) for p in written] == [
            "golden/job_note_summaries.jsonl",
            "golden/support_ticket_intents.csv",
            "manifest.yaml",
            "training/job_note_summaries_train.jsonl",
            "training/support_ticket_intents_train.csv",
        ]
        for relative in written:
            assert (tmp_path / relative).read_bytes() == (DATASETS / relative).read_bytes(), (
                relative
            )

    def test_another_seed_gives_other_data(self, generator: ModuleType) -> None:
        """The seed drives the content: a different seed writes different tickets."""
        first = generator.make_tickets(generator.Random("a"), 20, "t", set(), golden=True)
        second = generator.make_tickets(generator.Random("b"), 20, "t", set(), golden=True)
        assert [row["input"] for row in first] != [row["input"] for row in second]

    def test_vocabulary_tables_are_loaded_in_file_order(self, generator: ModuleType) -> None:
        """The phrase tables come from the TOML files beside the script, order kept, as tuples."""
        tickets = generator.load_vocabulary("tickets")
        assert list(generator.EN) == list(tickets["intents"])
        assert (
            generator.EN["billing_question"].core == tickets["intents"]["billing_question"]["core"]
        )
        assert isinstance(generator.PHONE_PROMPTS[0], tuple)
        assert [s.key for s in generator.SCENARIOS][:2] == ["run_capacitor", "flame_sensor"]

    def test_scenario_slots_draw_what_their_spec_says(self, generator: ModuleType) -> None:
        """Each slot form of job_notes.toml draws a value of its kind."""
        equipment = {"boilers": ("Weil-McLain boiler",)}
        draw = {
            name: generator.slot_from_spec(spec, equipment)(generator.Random(name), {"rated": "40"})
            for name, spec in {
                "pick": {"pick": ("a", "b")},
                "equipment": {"equipment": "boilers"},
                "uniform": {"uniform": (8, 14), "decimals": 1},
                "scaled": {"scaled": "rated", "by": (0.5, 0.5)},
                "part_number": {"part_number": "hvac"},
            }.items()
        }
        assert draw["pick"] in {"a", "b"}
        assert draw["equipment"] == "Weil-McLain boiler"
        assert re.fullmatch(r"\d+\.\d", draw["uniform"])
        assert 8 <= float(draw["uniform"]) <= 14
        assert draw["scaled"] == "20.0"
        assert re.fullmatch(r"P291-\d{4}|HC\d{5}|BM-\d{5}", draw["part_number"])

    def test_a_bad_scenario_slot_names_the_scenario_and_the_slot(
        self, generator: ModuleType
    ) -> None:
        """An unknown slot form or equipment pool is refused with where it is and what is valid."""
        entry = {"trade": "hvac", "key": "boiler_leak", "slots": {"psi": {"normal": (1, 2)}}}
        with pytest.raises(ValueError, match=r"scenario 'boiler_leak', slot 'psi'.*one of pick"):
            generator.load_scenario(entry, {})
        entry["slots"] = {"equip": {"equipment": "boilers"}}
        with pytest.raises(
            ValueError,
            match=r"scenario 'boiler_leak', slot 'equip'.*no \[equipment\] pool 'boilers'",
        ):
            generator.load_scenario(entry, {})

    def test_intent_tables_must_cover_every_intent(self, generator: ModuleType) -> None:
        """A ticket table missing an intent is refused, naming the table and the intents."""
        pools = dict.fromkeys(list(generator.INTENT_SHARES)[1:], ())
        with pytest.raises(ValueError, match=r"\[foreign\.es\].*billing_question"):
            generator.for_every_intent("foreign.es", pools)


class TestTicketFiles:
    def test_sizes_and_columns(
        self, ticket_golden: pd.DataFrame, ticket_train: pd.DataFrame
    ) -> None:
        """The golden set has at least 1,200 tickets, training 3,000, both with the five columns."""
        assert len(ticket_golden) >= 1_200
        assert len(ticket_train) >= 3_000
        for frame in (ticket_golden, ticket_train):
            assert list(frame.columns) == ["id", "input", "expected", "slice", "tags"]
            assert frame["id"].is_unique
            assert (frame["input"].str.strip() != "").all()

    def test_intents_are_imbalanced_like_real_traffic(
        self, ticket_golden: pd.DataFrame, ticket_train: pd.DataFrame
    ) -> None:
        """At least seven intents, the same in both splits, the largest 2.5x the smallest."""
        counts = ticket_golden["expected"].value_counts()
        assert len(counts) >= 7
        assert set(counts.index) == set(ticket_train["expected"])
        assert counts.max() >= 2.5 * counts.min()

    def test_slices_are_channels_and_most_tickets_are_english(
        self, ticket_golden: pd.DataFrame
    ) -> None:
        """Every channel appears; English dominates, with Spanish, German and French present."""
        assert set(ticket_golden["slice"]) == CHANNELS
        languages = tag_values(ticket_golden["tags"], "lang")
        assert languages["en"] >= 0.7 * len(ticket_golden)
        assert all(languages[lang] >= 0.02 * len(ticket_golden) for lang in ("es", "de", "fr"))
        assert set(tag_values(ticket_golden["tags"], "plan")) == {"starter", "pro", "enterprise"}

    def test_training_and_golden_share_no_ids_or_texts(
        self, ticket_golden: pd.DataFrame, ticket_train: pd.DataFrame
    ) -> None:
        """No id and no ticket text (ignoring case and punctuation) is in both splits."""
        assert not set(ticket_golden["id"]) & set(ticket_train["id"])
        assert not {words(t) for t in ticket_golden["input"]} & {
            words(t) for t in ticket_train["input"]
        }


class TestNoteFiles:
    def test_sizes_columns_and_trades(
        self, note_golden: pd.DataFrame, note_train: pd.DataFrame
    ) -> None:
        """At least 350 golden and 600 training notes, sliced by the four trades."""
        assert len(note_golden) >= 350
        assert len(note_train) >= 600
        for frame in (note_golden, note_train):
            assert list(frame.columns) == ["id", "input", "expected", "slice", "tags"]
            assert set(frame["slice"]) == TRADES

    def test_summaries_are_short_paraphrases(self, note_golden: pd.DataFrame) -> None:
        """A reference summary has one or two sentences and is never the note's first sentence."""
        for note, summary in zip(note_golden["input"], note_golden["expected"], strict=True):
            assert 1 <= len(split_sentences(summary)) <= 2
            assert summary != split_sentences(note)[0]

    def test_summaries_quote_only_numbers_from_their_note(
        self, note_golden: pd.DataFrame, note_train: pd.DataFrame
    ) -> None:
        """Every number in a reference summary also appears in its note: no invented facts."""
        for frame in (note_golden, note_train):
            for note, summary in zip(frame["input"], frame["expected"], strict=True):
                note_numbers = set(re.findall(r"\d+(?:\.\d+)?", note))
                assert set(re.findall(r"\d+(?:\.\d+)?", summary)) <= note_numbers, summary

    def test_training_and_golden_share_no_ids_or_notes(
        self, note_golden: pd.DataFrame, note_train: pd.DataFrame
    ) -> None:
        """No id and no note text is in both splits."""
        assert not set(note_golden["id"]) & set(note_train["id"])
        assert not {words(t) for t in note_golden["input"]} & {
            words(t) for t in note_train["input"]
        }


class TestManifest:
    def test_describes_every_file_exactly(self, manifest: dict[str, Any]) -> None:
        """Row counts, class and slice counts and SHA-256 digests match the files on disk."""
        entries = manifest["datasets"]
        assert {entry["path"] for entry in entries} == {
            "golden/support_ticket_intents.csv",
            "golden/job_note_summaries.jsonl",
            "training/support_ticket_intents_train.csv",
            "training/job_note_summaries_train.jsonl",
        }
        for entry in entries:
            path = DATASETS / entry["path"]
            frame = read_tickets(path) if entry["format"] == "csv" else read_notes(path)
            assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            assert entry["rows"] == len(frame)
            assert entry["columns"] == list(frame.columns)
            assert entry["slices"] == dict(Counter(frame["slice"]))
            if entry["task"] == "classification":
                assert entry["agent_type"] == "intent_classifier"
                assert entry["classes"] == dict(Counter(frame["expected"]))
            else:
                assert (entry["task"], entry["agent_type"]) == ("text_generation", "summarizer")
            assert entry["role"] == entry["path"].split("/")[0]

    def test_says_how_the_data_was_made(self, manifest: dict[str, Any]) -> None:
        """The provenance names the generator script, its seed, the noise rate and the licence."""
        assert manifest["generator"]["script"] == "scripts/make_demo_datasets.py"
        assert (REPO_ROOT / manifest["generator"]["script"]).is_file()
        assert "CC0" in manifest["generator"]["licence"]
        for entry in manifest["datasets"]:
            how = entry["how_it_was_made"]
            assert "scripts/make_demo_datasets.py" in how
            assert str(manifest["generator"]["seed"]) in how
            assert "CC0" in how
