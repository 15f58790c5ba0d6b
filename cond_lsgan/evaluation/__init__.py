"""Evaluation: measuring generators with a judge the project trains itself, and the paper's experiments.

    metrics.py  Fréchet distance, intra-class diversity, nearest-real distance, class balance
    scoring.py  `evaluate generator`: readability, judge-FID, diversity, copies, per class and overall
    augment_experiment.py  `evaluate augment`: does adding generated data help a classifier on held-out data?
    mog.py      `experiment mog`: the 2-D mixture of 8 Gaussians, regular GAN vs LSGAN
    audit.py    `audit`: glyphs a judge reads as another class, outliers of their class
    common.py   JSON reports, the picture beside a report, mean and spread over seeds

The judge itself (a small CNN glyph classifier, `evaluate train-judge`) is cond_lsgan/judge.py:
training's judge loss and sampling's judge filter use it too.

Standard FID needs Inception weights from the internet and judges 28x28 glyphs poorly, so
every image metric here uses the features of a judge trained on the project's own data.
"""
