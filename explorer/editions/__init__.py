"""The chapter's five editions: how each names, reaches and edits a parameter, and its code."""
