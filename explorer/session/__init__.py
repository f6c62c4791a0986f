"""The state as one value: the experiment, realize, actions, the workspace with undo, a session's uploads."""
