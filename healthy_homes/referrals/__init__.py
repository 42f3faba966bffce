"""Referrals: the minimum dataset, creation from consent, and delivery."""
