"""储值: stored value — recharges with bonus, payments, refunds, cash-outs and statements."""
