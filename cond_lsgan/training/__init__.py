"""Training a GAN on a glyph store: the loop (loop.py) and what one step of it is made of.

`cond-lsgan train` runs `loop.train`; one G and D update is a `step.TrainingStep`, fed by
`batches.GlyphBatches`, scored by `losses`, with D's inputs augmented by `diff_augment`
and an optional judge term in G's loss (`judge_loss`); `checkpointer` saves, checks and
prunes the run's checkpoints. Around the loop: the run folder and
its lock (`run_folder`, `run_outputs`), resuming (`resume`), torchrun ranks
(`distributed`) and TensorBoard events (`tensorboard_log`). Nothing here imports
`sampling` or `evaluation` (tests/test_layout.py).
"""
