"""The model as a JSON spec.

The block-type table and its fields, validation, building (where ties are made), pure
edits, the chapter's presets, and models written as code.
"""
