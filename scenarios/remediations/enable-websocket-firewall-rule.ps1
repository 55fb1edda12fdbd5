# Enable the Remote Desktop (WebSocket) inbound rule on the RD Gateway.
Enable-NetFirewallRule -DisplayName "Remote Desktop - (TCP-WS-In)"
