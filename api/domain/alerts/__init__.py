"""Response-time alerting: four rules, stored deadlines, escalation up the chain of command.

``rules`` decides (plain functions of stored facts and the time), ``engine`` reads due
calls and reconciles alerts in the database (two workers never raise one twice),
``services`` lists, acknowledges and resolves them for people and scans for emerging hot
spots, ``feeds`` is the live alert feed, ``controllers`` is HTTP; the shipped policy is
``alerts.toml``. Public to other packages: ``schemas`` and ``services``.
"""
