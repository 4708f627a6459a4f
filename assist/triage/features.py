"""The text classifiers' model: a sparse linear model over words, word pairs, suffixes and rule signals.

Besides the NORM unigrams and bigrams of spaCy's bag-of-words classifier, it sees each
word's suffix (robust to typos and transcription errors: "bleedin", "bleating") and one
feature per danger signal with its context ("rule=toxin:negated"), so the classifiers
learn how much a negated, resolved or past signal still counts.
"""

import numpy
from spacy.attrs import NORM, SUFFIX
from spacy.strings import hash_string  # type: ignore[attr-defined]  # in the Cython module, not its stub
from spacy.util import registry
from thinc.api import Logistic, Model, SparseLinear_v2, chain, softmax_activation

from assist.triage.rules import SPAN_KEY


def rule_keys(doc) -> list[int]:
    spans = doc.spans.get(SPAN_KEY, ())
    return [hash_string(f"rule={span.label_}:{span._.danger_context}") for span in spans]


SUFFIX_SALT = numpy.uint64(0x5DEECE66D)  # keeps a suffix's key apart from the same word's
def word_keys(ops, doc, ngram_size: int) -> list:
    """[NORM keys, suffix keys, bigram keys, trigram keys...] of a doc, each an array in token order."""
    words = ops.asarray(doc.to_array([NORM]))
    keys = [words, ops.asarray(doc.to_array([SUFFIX])) ^ SUFFIX_SALT]
    return keys + [ops.ngrams(n, words) for n in range(2, ngram_size + 1)]


def token_features(ops, doc, ngram_size: int, tokens: list[int]):
    """The features each of tokens takes part in (its word, suffix and n-grams), one segment per token."""
    keys = word_keys(ops, doc, ngram_size)
    segments = []
    for i in tokens:
        own = [keys[0][i:i + 1], keys[1][i:i + 1]]
        for n, grams in enumerate(keys[2:], start=2):
            own.append(grams[max(0, i - n + 1):i + 1])  # the n-grams that start within n-1 words before i
        segments.append(numpy.concatenate(own).astype("uint64"))
    lengths = ops.asarray([len(k) for k in segments], dtype="int32")
    joined = numpy.concatenate(segments) if segments else numpy.zeros((0,), dtype="uint64")
    return joined, ops.asarray(numpy.ones(len(joined)), dtype="f"), lengths


def doc_features(ops, doc, ngram_size: int) -> tuple:
    """A doc's unique feature keys and their counts, computed once and shared by the three classifiers."""
    cache_key = ("triage_features", ngram_size)
    if cache_key not in doc.user_data:
        keys = word_keys(ops, doc, ngram_size)
        signals = rule_keys(doc)
        if signals:
            keys.append(numpy.asarray(signals, dtype="uint64"))
        doc.user_data[cache_key] = numpy.unique(numpy.concatenate(keys).astype("uint64"), return_counts=True)
    return doc.user_data[cache_key]


def featurize(ngram_size: int):
    def forward(model: Model, docs, is_train: bool):
        ops = model.ops
        batch_keys, batch_vals = [], []
        for doc in docs:
            unique, counts = doc_features(ops, doc, ngram_size)
            batch_keys.append(unique)
            batch_vals.append(counts)
        lengths = ops.asarray([len(k) for k in batch_keys], dtype="int32")
        keys = numpy.concatenate(batch_keys) if batch_keys else numpy.zeros((0,), dtype="uint64")
        counts = numpy.concatenate(batch_vals) if batch_vals else numpy.zeros((0,))
        vals = counts.astype("float32")  # what NumpyOps.asarray(dtype="f") gives
        return (keys, vals, lengths), lambda d_features: []

    return Model("triage_features", forward, attrs={"ngram_size": ngram_size})


@registry.architectures("assist.TriageLinear.v1")
def triage_linear(exclusive_classes: bool, ngram_size: int, length: int, nO: int | None = None) -> Model:
    """Words, word pairs, suffixes and rule signals into one sparse linear layer, then softmax."""
    linear = SparseLinear_v2(nO=nO, length=length)
    output = softmax_activation() if exclusive_classes else Logistic()
    features = featurize(ngram_size)
    model: Model = chain(features, linear, output)
    model.set_ref("features", features)
    model.set_ref("output_layer", linear)
    model.attrs["multi_label"] = not exclusive_classes
    return model


def token_scores(model: Model, doc, tokens: list[int]):
    """Each of tokens' contribution to each label's score (tokens × labels) in a TriageLinear model: the
    weights of the features the token takes part in, without the bias. The model is linear before its
    softmax, so these add up to the doc's scores."""
    featurizer, linear = model.get_ref("features"), model.get_ref("output_layer")
    keys, values, lengths = token_features(linear.ops, doc, featurizer.attrs["ngram_size"], tokens)
    empty = (keys[:0], values[:0], linear.ops.asarray([0], dtype="int32"))
    return linear.predict((keys, values, lengths)) - linear.predict(empty)
