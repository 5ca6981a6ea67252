"""Reaching customers first: API keys, finding a customer, and messages and
flows the business starts (the public API under `/api/v1`)."""
