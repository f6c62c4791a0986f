"""The model as a JSON spec: the block-type table, its fields, validation, building, pure edits, presets, models from code."""
