# The exception the articles ask for: mstsc.exe, and TCP/UDP 3389 outbound.
New-NetFirewallRule -DisplayName "Remote Desktop client (mstsc.exe)" -Direction Outbound -Program "%SystemRoot%\System32\mstsc.exe" -Action Allow
New-NetFirewallRule -DisplayName "Remote Desktop (TCP 3389 out)" -Direction Outbound -Protocol TCP -RemotePort 3389 -Action Allow
New-NetFirewallRule -DisplayName "Remote Desktop (UDP 3389 out)" -Direction Outbound -Protocol UDP -RemotePort 3389 -Action Allow
