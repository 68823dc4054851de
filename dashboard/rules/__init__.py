"""The domain rules that pages, previews and tasks share, one implementation each.

Plain, pure functions over small frozen dataclasses: no Django, no Redis, no Stigg calls,
so every rule is tested on its own and a page, a preview and a background task can never
disagree about what a budget means.
"""
