"""The origin's context service: shopper profiles from the clickstream, segments from rules.

Modules: `profile` (the bounded profile and its order-free update, pure), `rules` (segment rules:
validation, evaluation, explanation, pure), `store` (profiles, decisions and rule versions in
Redis; erasure), `processor` (the ``clickstream.v1`` consumer group). It imports the catalog core
and `fragments`, never the web service.
"""
