"""Reporting: the funnel per practice, register and month; charts; capacity before go-live."""
