"""Evaluation: measuring generators with a judge the project trains itself, and the paper's experiments.

    judge.py    a small CNN glyph classifier (`train-judge`): its features and logits score generators
    metrics.py  Fréchet distance, intra-class diversity, nearest-real distance, class balance
    scoring.py  `evaluate generator`: readability, judge-FID, diversity, copies, per class and overall
    augment.py  `evaluate augment`: does adding generated data help a classifier on held-out data?
    mog.py      `experiment mog`: the 2-D mixture of 8 Gaussians, regular GAN vs LSGAN
    common.py   seed lists, class matching by text, JSON output, progress and run-time estimates

Standard FID needs Inception weights from the internet and judges 28x28 glyphs poorly, so
every image metric here uses the features of a judge trained on the project's own data.
"""
