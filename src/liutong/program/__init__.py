"""The loyalty program: earn and redeem rules, campaigns, tiers and benefits as versioned data."""
