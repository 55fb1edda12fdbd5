# "Disable it temporarily": every firewall profile off.
Set-NetFirewallProfile -Profile Domain,Public,Private -Enabled False
