qwinsta
rwinsta 2
