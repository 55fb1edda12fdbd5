# Delete the Remote Desktop self-signed certificate, then restart the services: at start
# Windows creates a new one (Microsoft's fix for events 1057 / 1058).
Get-ChildItem -Path "Cert:\LocalMachine\Remote Desktop" | Remove-Item
Restart-Service -Name SessionEnv -Force
Restart-Service -Name TermService -Force
