"""The connector: register sync, flag raising and referral delivery for each practice."""
