"""The state as one value.

The experiment and its ops, realize, the actions (where a click changes the state), the
workspace with undo, and a session's uploads.
"""
