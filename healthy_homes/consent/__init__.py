"""Consent: recording the patient's decision, and the gate every referral passes."""
