"""The poll core: agents and their schedule, the poller, the tracker, state and the trace phase."""
