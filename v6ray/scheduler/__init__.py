"""The UnifiedScheduler: periodic producer jobs (jobs.py), market clocks (calendar.py), the
pure "what is due now" planner (planner.py), persisted state (state.py) and the actor
(actor.py, ``get_or_create_scheduler``)."""
