"""Checkout: the one transaction every POS, gate, front desk and parking exit makes."""
