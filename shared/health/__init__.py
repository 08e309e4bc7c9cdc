"""Keeping delegated sign-ins alive and telling people before work needs them.

`signins` redeems idle refresh tokens and records each sign-in's health (`store`), `notify`
sends signed events to a connection's notifyUrl, `parked` reports work parked too long,
`audit` checks a connection's mailbox permissions, `events` writes the log lines the alert
rules and the workbook read, and `job` is what the `signin_health` timer runs.
"""
