"""The core: an explicit finite-state machine that turns a question into an answer."""
