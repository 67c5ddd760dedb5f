"""`segue jam`: play live with the band (clock follower, ring buffer on the bar grid, bar-line launches).

See docs/live.md. Modules: clock, ringbuffer, scheduler, triggers, audio, link (optional), app, cli.
"""
