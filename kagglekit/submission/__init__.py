"""Submission files in exactly the shape of the competition's `sample_submission.csv`.

The format is learnt from the sample (`read_format`): the id column (name, order,
ids kept as text so `1`, `2`, `10` and `00017` match as written), and one of five
shapes:

========== ============================== =====================================
kind       sample looks like              written
========== ============================== =====================================
label      ``id,label`` / ``3``           the most probable class name (QWK: the
                                          grade cut from the expected grade)
label_id   ``id,label`` / ``0`` or ``1``  its index in the classes (names not numbers)
probability``id,label`` / ``0.5``         P(positive class), clipped by settings
per_class  ``id,cat,dog,...``             one probability column per class, in
                                          the sample's column order
labels     ``image_id,label_id`` / ``1 2``space-separated labels (thresholds, fallback)
ranked     ``Image,Id`` / ``new_whale w_1 top-k guesses, best first, the "new" class
           w_2 w_3 w_4`` (one label per   inserted by its tuned threshold (MAP@k)
           image)
========== ============================== =====================================

What the sample cannot settle is inferred, stated with its reason in
`SubmissionFormat.notes` (and logged), and overridable: a binary sample holding
one constant in every row (Histopathologic's ``0``, Aerial Cactus's ``0.5``) is a
placeholder, so a probability column is written unless the metric scores labels
(``--metric accuracy``); the metric (`infer_metric`, an explicit metric always
wins) settles the rest: probability metrics (log loss, AUC) never get hard labels.
A single probability column holds P(positive): the class given as ``positive=``,
else one the data name (a column named after a class or ``has_<x>``, 0/1 or
yes/no classes: `kagglekit.layout.infer.positive_class`), else ``dog`` for cat/dog
classes (Dogs vs. Cats scores P(dog)), else writing refuses (`PositiveClassError`,
naming ``--positive``).

`write_submission` checks the frame with `validate_submission` and only then
writes it, atomically (zipped when large); `validate_submission` checks a file
or frame before you submit it. Every problem raises `SubmissionError` naming the
problem and the fix.
"""
from .format import (KINDS, SAMPLE_NAMES, ZIP_OVER_BYTES, MetricChoice, SubmissionFormat, find_sample_submission,
                     infer_metric, read_format)
from .validate import validate_submission
from .write import to_frame, write_submission

__all__ = ["KINDS", "SAMPLE_NAMES", "ZIP_OVER_BYTES", "MetricChoice", "SubmissionFormat", "find_sample_submission",
           "infer_metric", "read_format", "to_frame", "validate_submission", "write_submission"]
