# Enable Windows Defender Firewall's built-in Remote Desktop rules.
Enable-NetFirewallRule -DisplayGroup "Remote Desktop"
