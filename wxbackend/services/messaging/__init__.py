"""The Official Account's messages: the inbox for pushes, keyword replies, the outbox, the menu."""
