"""Raw competition layouts → `LabelTable`; class folders and multi-hot CSVs written out; splits.

The package holds `readers` (folders, JSON, pixels, unlabelled, groups), `readers_csv`
(label CSVs and id lists), `infer` (label kind, positive class, id convention: pure
functions with reasons), `tests_source` (where the test images are), `detect`,
`writers` and `split`; every public name is re-exported here, so
``kagglekit.layout.from_csv`` and friends are the way to call them.

Readers (each returns a `LabelTable`; rows are sorted naturally by file name for
folder-based readers and kept in file order for CSV/JSON readers; paths are absolute):

* `from_filenames(folder, pattern)`: labels taken from file names (Dogs vs. Cats:
  ``train/cat.123.jpg``).
* `from_folders(root)`: existing class folders ``root/<class>/**/<image>``; the class is
  the FIRST-level folder, deeper folders only organise files; ids are the relative paths
  without extension (``cat/2019/001``), so they stay unique.
* `from_csv(csv, images=folder)`: ``id,label`` single-label (class names may hold
  spaces), ``image_name,tags`` multi-label (space-separated) or the wide 0/1 form
  (one-hot: single-label); the id column is the one whose values name files in
  `images`; single/multi-label is inferred from all the evidence (`infer.label_kind`).
* `from_ids(csv, images=folders)`: an unlabelled table of the ids a CSV lists
  (``test.csv``, a sample submission), in the submission's id convention.
* `from_imaterialist_json(json, images=folder)`: the iMaterialist Fashion 2018 JSON;
  a JSON without annotations gives an unlabelled table.
* `from_pixel_csv(csv)`: pixels in a CSV (Digit Recognizer, Fashion-MNIST:
  ``label,pixel0..pixel783``); the images are written once as PNGs and read from there.
* `unlabelled(folder or folders, ids="stem"|"name")`: test images.
* `attach_groups(table, csv, group_col)`: each row's group (driver, patient).
* `detect(directory, multilabel=, positive=, group_col=, id_col=, label_col=,
  id_extension=, test=)` / `read_competition(directory)`: the readers of a whole
  competition folder and the `Layout` of inferred facts (each with its reason) and
  ambiguities (each naming its override, see `OVERRIDES`).

Writers: `write_class_folders` (symlinks by default, hardlinks or copies on request;
never touches the source; idempotent), `write_multihot_csv` (``image,labels`` or wide
0/1), `imaterialist_to_csv`. All files are written atomically.

Splits: `split` (stratified; iterative stratification for multi-label; group-aware,
the table's groups by default), `kfold` (their K-fold versions: each row's fold), `sample`
(stratified ``n`` or ``frac``) and `split_arrays` (in-memory ``(x, y)`` arrays, by
scikit-learn), all seeded and deterministic.
"""
from __future__ import annotations

from ..table import natural_key  # the one key order, re-exported: job.py sorts vocabularies with it
from .detect import OVERRIDES, Ambiguity, Fact, Layout, Reader, detect, read_competition
from .readers import (
    IMAGE_EXTENSIONS,
    attach_groups,
    from_filenames,
    from_folders,
    from_imaterialist_json,
    from_pixel_csv,
    imaterialist_to_csv,
    unlabelled,
)
from .readers_csv import from_csv, from_ids
from .split import _fix_sides, kfold, sample, split, split_arrays
from .writers import write_class_folders, write_multihot_csv

__all__ = [
    "IMAGE_EXTENSIONS",
    "OVERRIDES",
    "Ambiguity",
    "Fact",
    "Layout",
    "Reader",
    "attach_groups",
    "detect",
    "from_csv",
    "from_ids",
    "from_filenames",
    "from_folders",
    "from_imaterialist_json",
    "from_pixel_csv",
    "imaterialist_to_csv",
    "kfold",
    "read_competition",
    "sample",
    "split",
    "split_arrays",
    "unlabelled",
    "write_class_folders",
    "write_multihot_csv",
]
