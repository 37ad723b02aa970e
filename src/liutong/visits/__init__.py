"""Venue events that are not purchases: gate entries, hotel stays, parking exits."""
