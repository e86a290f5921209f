//! Evaluation of checked policies: rule selection, the matcher interpreter, admission verdicts.
