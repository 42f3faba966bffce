"""Referral transports: one way of delivering a referral per housing service."""
