param([string]$HostAddress = "10.213.2.2")
# Let the RD Gateway connect out to the session host on TCP 3389 (its outbound firewall).
New-NetFirewallRule -DisplayName "RD Gateway to session hosts (TCP-Out)" -Direction Outbound -Protocol TCP -RemotePort 3389 -RemoteAddress $HostAddress -Action Allow
