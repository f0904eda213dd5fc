"""The built-in demo config: what the embedded router runs with when given no `--config`.

Kept as TOML text (not Python values) so it goes through the same loader and validation as an
operator's file and doubles as a worked example of the format (docs/routing.md).
"""

from __future__ import annotations

DEMO_CONFIG = """
skills = ["english", "spanish", "billing_systems", "sales_products"]

[routing]
strategy = "longest_idle"
wrap_up_timeout = 30
voice_blocks = ["chat"]

[capacity]
voice = 1
chat = 3
sms = 2
email = 5

[codes]
reasons = ["Break", "Lunch", "Training", "Meeting"]
wrap_up = ["resolved", "follow_up", "escalated", "no_answer", "solved"]

[queues.support]
priority = 1
skills = { english = 1 }
service_level = { percent = 80, seconds = 20 }

[queues.sales]
priority = 2
skills = { english = 1 }
service_level = { percent = 80, seconds = 30 }
overflow = { after = 300, to = "support" }

[queues.billing]
priority = 1
skills = { billing_systems = 1 }
service_level = { percent = 70, seconds = 60 }

[agents.ana]
id = "a-ana"
name = "Ana Lima"
queues = ["support", "sales"]
skills = { english = 4, spanish = 4, sales_products = 3 }

[agents.ben]
id = "a-ben"
name = "Ben Okafor"
queues = ["support", "billing"]
skills = { english = 4, billing_systems = 3 }

[agents.chloe]
id = "a-chloe"
name = "Chloé Martin"
queues = ["sales", "billing"]
skills = { english = 4, billing_systems = 3, sales_products = 5 }

[agents.sam]
id = "a-sam"
name = "Sam Rivera (supervisor)"
queues = []
supervises = ["support", "sales", "billing"]
"""
