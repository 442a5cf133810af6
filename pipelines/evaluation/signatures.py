"""What a run's text metrics equal: sacrebleu signatures and rouge-score's version and options.

StreamFlow computes BLEU, chrF and ROUGE itself (faster), equal to sacrebleu and rouge-score
under the options a run was scored with; the signatures say which configuration that is, in the
libraries' own words, so a number can be reproduced with the library alone.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata

from pipelines.evaluation.rouge import ROUGE_TYPES
from pipelines.evaluation.text_metrics import TextMetricOptions

BLEU = "sacrebleu.bleu"
"""Corpus BLEU (`bleu` metric)."""
SENTENCE_BLEU = "sacrebleu.sentence_bleu"
"""Per-example BLEU (effective order)."""
CHRF = "sacrebleu.chrf"
ROUGE = "rouge_score"
SCIKIT_LEARN = "scikit_learn"


def scoring_signatures(
    task: str, options: TextMetricOptions, *, use_stemmer: bool
) -> dict[str, str]:
    """Signatures of a task's metrics: sacrebleu and rouge-score for text generation, the
    scikit-learn calls classification metrics equal otherwise."""
    if task == "classification":
        return {
            SCIKIT_LEARN: f"scikit-learn {metadata.version('scikit-learn')}"
            "|precision_recall_fscore_support|per class:zero_division=nan"
            "|macro:labels with support,zero_division=0|micro,weighted:label set,zero_division=0"
        }
    return dict(_signatures(options, use_stemmer))


@cache
def _signatures(options: TextMetricOptions, use_stemmer: bool) -> dict[str, str]:
    from sacrebleu.metrics.bleu import BLEU as SacreBLEU
    from sacrebleu.metrics.chrf import CHRF as SacreCHRF

    def signature(metric: SacreBLEU | SacreCHRF) -> str:
        metric.corpus_score(["a"], [["a"]])  # the signature needs the number of references
        return str(metric.get_signature())

    tokenize, lowercase = options.bleu_tokenize, options.bleu_lowercase
    rouge = (
        f"rouge-score {metadata.version('rouge-score')}|types:{','.join(ROUGE_TYPES)}"
        f"|stemmer:{'yes' if use_stemmer else 'no'}|split_summaries:no|tokenizer:default"
    )
    return {
        BLEU: signature(SacreBLEU(tokenize=tokenize, lowercase=lowercase, force=True)),
        SENTENCE_BLEU: signature(
            SacreBLEU(tokenize=tokenize, lowercase=lowercase, force=True, effective_order=True)
        ),
        CHRF: signature(
            SacreCHRF(char_order=options.chrf_char_order, word_order=options.chrf_word_order)
        ),
        ROUGE: rouge,
    }
