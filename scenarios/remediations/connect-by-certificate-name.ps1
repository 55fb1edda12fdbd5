param([string]$GatewayName = "rdgw.lab.test")
# Point mstsc's RD Gateway setting at the name the gateway's certificate carries (its FQDN), not
# its IP address or an alias: mstsc checks the gateway certificate against the name it connects
# to. Rewrites the RD Gateway lines of the settings mstsc opens with (Default.rdp).
Set-Content -Path "$env:USERPROFILE\Documents\Default.rdp" -Value "gatewayhostname:s:$GatewayName", "gatewayusagemethod:i:1", "gatewayprofileusagemethod:i:1"
