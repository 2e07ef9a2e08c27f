"""Data: find, check and decode images (files, scan), split them (split, metadata),
describe them (describe), and feed them to a network (transforms, balance, loaders).

`prepare_data(cfg)` does the whole stage and returns a `PreparedData`.
"""
