"""Sampling from a checkpoint alone: the generator rebuilt (loaded_generator.py), grids, stores and PNG folders
(generate.py), styles of font faces (style_set.py: the file and noise between styles; style_fit.py: fitting them),
and the judge filter that keeps glyphs a judge reads as their label (judge_filter.py).
"""
