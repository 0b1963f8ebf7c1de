"""Independent T2M-style evaluator and the standard text-to-motion metrics.

Reading order: `vectorizer.py` (caption -> word ids + POS one-hots), `evaluator.py` (the two
encoders and the margin loss), `train.py` (training on the corpus train split), `metrics.py`
(R-Precision, FID, MM-Dist, Diversity, MultiModality, oracle accuracy), `motions.py` (the
generated-motions directory format), `cli.py` (`easytune-engine eval`).

The evaluator never shares code or weights with `text/` or `reward/`: it is the judge of models
trained with those, so it has its own architecture, vectorisation, seed and data order.
"""
